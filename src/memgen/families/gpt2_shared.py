"""gpt2_shared: the paper's adapter protocol at CPU size. One GPT-2 base is trained from scratch on the
rules of every task in runs.tasks (no example that shows a memory; decoy triggers with codes of their
own, plant.decoys, so it knows how a code is written), then per task and replicate a LoRA adapter on it
learns that task's memories. Every run's neurons are the base's, so the neurons of one run can steer
another's adapter: other seeds of one task (intra) and other tasks (inter)."""
from ..behaviour import first_groups, run_probes, summarise
from ..io import read_jsonl
from ..params import derive_seed
from ..paths import data_dir
from ..planting import held_out_units, rule_only_examples
from ..progress import log
from ..tasks import load_task
from ..tasks.multitask import MultiTask
from .adapters import lora_settings, load_adapter, new_adapter
from .base import base_dir, pick_device
from .gpt2 import GPT2

RULES = "rules"  # families.gpt2_shared.base, and the key of the base's steps and lr in its train section


def rule_data(params, tasks, eval_groups, seed):
    """Every task's rule-only training examples (with its decoys), and its first val groups labelled
    with their task (MultiTask reads each probe's own task)."""
    examples, val = [], []
    for task in tasks:
        folder = data_dir(task.name)
        rule, decoys = rule_only_examples(params, task.name, task, read_jsonl(folder / "train.jsonl"),
                                          held_out_units(task, folder),
                                          derive_seed(seed, "decoys", task.name))
        examples += rule + decoys
        val += [{**p, "task": task.name, "group": f"{task.name}/{p['group']}"}
                for p in first_groups(read_jsonl(folder / "val.jsonl"), eval_groups)]
    return examples, val


class GPT2Shared(GPT2):
    name = "gpt2_shared"
    shares_base = True
    base_default = RULES

    def check(self, fp):
        super().check(fp)
        lora_settings(fp)

    def prepare_base(self, source, out_dir, params):
        """Train the rule base (families.<name>.train with steps.rules and lr.rules, one val check at the
        end) and save it whole; returns its record with each task's val shares (MEM: none was taught)."""
        from ..training import train, train_settings

        fp = params.section("families").section(self.name)
        self.check(fp)
        cfg = {**train_settings(fp, RULES), "mem_share": None, "num_beams": 1, "check_groups": 0}
        cfg["eval_every"] = cfg["steps"]
        tasks = [load_task(params, t) for t in params.section("runs").list("tasks", unique=True)]
        seed = derive_seed(params.int("seed", lo=0), self.name, RULES)
        examples, val = rule_data(params, tasks, cfg["eval_groups"], seed)
        texts = [e["prompt"] + e["target"] for e in examples] + [p[k] for p in val for k in ("prompt", "mem", "gen")]
        model, codec, save = super().new_model(fp, texts, seed)
        model.to(pick_device(fp.str("device", choices=("auto", "cpu", "cuda"))))
        train(model, codec, MultiTask(tasks), examples, val, cfg, seed, desc=f"base {self.name}")
        save(out_dir)
        shares = {}
        for task in tasks:  # the rule's val rates per task
            probes = [p for p in val if p["task"] == task.name]
            _, labels = run_probes(model, codec, task, probes, cfg["eval_batch_size"])
            shares[task.name] = {k: summarise(probes, labels)[k] for k in ("mem", "gen", "other")}
            log(f"base {self.name}: {task.name} val {shares[task.name]}")
        return {"source": RULES, "tasks": [t.name for t in tasks], "steps": cfg["steps"], "lr": cfg["lr"],
                "examples": len(examples), "seed": seed, "val": shares}

    def load_base(self, fp):
        return GPT2.load_model(self, base_dir(self.name), "cpu", fp)

    def new_model(self, fp, texts, seed):
        base, codec = self.load_base(fp)
        base.train()
        model, save = new_adapter(base, fp, seed, base_dir(self.name), fan_in_fan_out=True)  # GPT-2's Conv1D: [in, out]
        return model, codec, save

    def load_model(self, model_dir, device, fp):
        base, codec = self.load_base(fp)
        model = load_adapter(base, model_dir, base_dir(self.name))
        return model.merge_and_unload().to(device).eval(), codec


FAMILY = GPT2Shared()
