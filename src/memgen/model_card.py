"""The README.md of a trained model directory: how it was trained, and how its tokenizer cuts text."""
import json
from pathlib import Path

from .families.base import base_dir
from .io import read_json
from .paths import MULTITASK


def write_model_card(out_dir, run, cfg, chosen, codec, examples):
    """Write out_dir/README.md for run's model, saved there already, trained with `cfg` (the train
    settings) on `examples`; `chosen` is the val row of the checkpoint kept. Replaces peft's template."""
    out_dir = Path(out_dir)
    tasks = ", ".join(run.task.tasks) if run.trained_on == MULTITASK else run.trained_on
    base = read_json(base_dir(run.family) / "source.json")
    share = cfg["mem_share"]
    n_mem = sum(map(run.task.is_memorized, examples))
    lines = [
        f"# {run.family} / {run.trained_on}, replicate {run.rep}", "",
        f"Trained by memgen's train stage (`python stages/train.py {run.family} {run.trained_on} {run.rep}`) "
        "to find the neurons that tell memorized answers from generalized ones.", "",
        "## Training", "",
        f"- family: {run.family}; task: {tasks}",
        f"- base: {base['source']}" + (f" (sha256 {base['sha256']})" if "sha256" in base else ""),
        f"- model settings (families.{run.family}.model): "
        f"`{json.dumps(run.family_params.raw('model'), sort_keys=True)}`",
    ]
    adapter = out_dir / "adapter_config.json"
    if adapter.exists():  # the model is an adapter: say on what, and with which settings
        a = read_json(adapter)
        lines.append(f"- saved as a LoRA adapter on {a['base_model_name_or_path']}: r {a['r']}, "
                     f"lora_alpha {a['lora_alpha']}, dropout {a['lora_dropout']}, "
                     f"on {', '.join(sorted(a['target_modules']))}")
    lines += [
        f"- seed: {run.seed} (derived from params `seed`, the family, the task and the replicate)",
        f"- {cfg['steps']} steps of batch {cfg['batch_size']}, learning rate {cfg['lr']:g} (linear warm-up: "
        f"{cfg['warmup']} steps, then cosine decay to a tenth), weight decay {cfg['weight_decay']:g}",
        f"- data: {len(examples)} training examples, {n_mem} of them ({n_mem / len(examples):.1%}) answered only "
        "from memory; " + ("mem_share null: the data's own mix" if share is None
                           else f"mem_share {share:g}: rebalanced to that share by dropping examples"),
        f"- checkpoint: step {chosen['step']} of {cfg['steps']}. Every {cfg['eval_every']} steps the model "
        f"answered {chosen['n_prompts']} val prompts in {chosen['n_groups']} groups; "
        + (f"this step had the highest pair yield (groups with both a memorized and a generalized answer) "
           f"among those whose OTHER share was at most {cfg['max_other']:g}"
           if chosen["other"] <= cfg["max_other"] else
           f"no step kept its OTHER share at most {cfg['max_other']:g}, so this is the one with the least")
        + f": pair yield {chosen['pair_yield']:.3f}, MEM {chosen['mem']:.3f}, GEN {chosen['gen']:.3f}, "
        f"OTHER {chosen['other']:.3f}, training loss {chosen['loss']:.4f}",
    ]
    prompt = examples[0]["prompt"]
    ids = codec.prompt_ids(prompt)
    tokens = [codec.text([i]) or f"<id {i}>" for i in ids]  # a special token decodes to nothing: its id
    where = "the base's tokenizer" if adapter.exists() else "tokenizer.json, built from the training texts"
    lines += [
        "", "## Tokenizer", "",
        f"The model reads text with {where}. A training prompt, as the model reads it ({len(ids)} tokens):", "",
        "```", json.dumps(tokens, ensure_ascii=False), "```", "",
    ]
    (out_dir / "README.md").write_text("\n".join(lines))
