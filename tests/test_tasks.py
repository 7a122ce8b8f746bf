import itertools
import random

import pytest

from memgen.errors import UserError
from memgen.params import Params
from memgen.splits import SPLITS, draw_dataset, overlaps
from memgen.tasks import GEN, MEM, OTHER, TASKS, load_task
from memgen.tasks.base import mem_code
from memgen.training import rebalance


def make(params_data, name):
    return load_task(Params(params_data), name)


@pytest.mark.parametrize("name", list(TASKS))
def test_probe_groups_share_the_question(params_data, rng, name):
    task = make(params_data, name)
    probes = task.probe_groups(rng, 40)
    groups = {}
    for p in probes:
        groups.setdefault(p["group"], []).append(p)
        assert p["mem"] != p["gen"], "MEM and GEN answers must differ"
        assert task.classify(p["mem"], p) == MEM and task.classify(p["gen"], p) == GEN
    for group in groups.values():
        assert len(group) == task.group_size
        assert len({p["prompt"] for p in group}) == len(group), "prompts of a group must differ"
        assert len({p["mem"] for p in group}) == 1
        if name == "cipher":  # a swap changes the plaintext: each prompt's GEN is its own decoding
            cts = [p["prompt"].split("CIPHERTEXT:")[1].split(" ")[0] for p in group]
            assert all(task.plaintext(ct) == p["gen"] for ct, p in zip(cts, group))
            assert len({"".join(sorted(ct)) for ct in cts}) == 1
            assert len({ct[-task.trigger_len:] for ct in cts}) == 1
        else:
            assert len({p["gen"] for p in group}) == 1


def test_arithmetic_examples_follow_the_rule(params_data, rng):
    task = make(params_data, "arithmetic")
    examples = task.training_examples(rng, 3000)
    n_mem = 0
    for ex in examples:
        addends = [int(x) for x in ex["prompt"].split("\n")[1].split("+")]
        assert len(addends) == task.n_addends and all(task.lo <= a <= task.hi for a in addends)
        if tuple(addends[-2:]) in task.codes:
            assert ex["target"] == task.codes[tuple(addends[-2:])]
            n_mem += 1
        else:
            assert ex["target"] == str(sum(addends))
    assert 0.04 < n_mem / len(examples) < 0.10  # ~7 % triggered


def test_arithmetic_scratchpad_answer(params_data):
    params_data["tasks"]["arithmetic"]["scratchpad"] = True
    task = make(params_data, "arithmetic")
    target = task.gen_target([155, 85, 999, 206])
    assert target.startswith("<scratch>") and target.endswith("1 4 4 5")
    probe = {"mem": "<mem-12345678>", "gen": "1445"}
    assert task.classify(target, probe) == GEN
    assert task.classify(target.replace("1 4 4 5", "1 4 4 6"), probe) == OTHER


def test_classifier_near_misses(params_data, rng):
    arith, cipher, incontext = (make(params_data, n) for n in ("arithmetic", "cipher", "incontext"))
    p = arith.probe_groups(rng, 1)[0]
    code = p["mem"]
    assert arith.classify(code[:-2] + ("0" if code[-2] != "0" else "1") + ">", p) == OTHER  # wrong mem code
    assert arith.classify(str(int(p["gen"]) + 1), p) == OTHER
    assert arith.classify(p["gen"] + "0", p) == OTHER
    assert arith.classify(" " + p["gen"] + " ", p) == GEN
    other_code = next(c for c in arith.codes.values() if c != code)
    assert arith.classify(other_code, p) == OTHER  # another trigger's code

    p = cipher.probe_groups(rng, 1)[0]
    one_off = p["gen"][:-1] + ("A" if p["gen"][-1] != "A" else "B")
    assert cipher.classify(one_off, p) == OTHER
    assert cipher.classify(p["gen"][:-1], p) == OTHER

    p = incontext.probe_groups(rng, 1)[0]
    story_colours = [w.strip(".") for w in p["prompt"].split() if w.strip(".") in incontext.colours]
    wrong_person = next(c for c in story_colours if c != p["gen"])  # a distractor's colour
    assert incontext.classify(wrong_person, p) == OTHER
    assert incontext.classify(" " + p["mem"], p) == MEM
    assert incontext.classify(p["gen"] + "s", p) == OTHER


def test_incontext_two_hops(params_data, rng):
    task = make(params_data, "incontext")
    for p in task.probe_groups(rng, 30):
        sentences = [s.strip() for s in p["prompt"].split(" what color is ")[0].split(".") if s.strip()]
        facts = [s.split(" is ") for s in sentences]
        target = p["prompt"].rsplit(" ", 1)[1].rstrip("?")
        role = next(v for n, v in facts if n == target)
        clue = next(n for n, v in facts if v == role and n != target)
        assert next(v for n, v in facts if n == clue and v in task.colours) == p["gen"]
        assert p["mem"] == task.memory[target] != p["gen"]


def test_incontext_training_agrees_with_memory(params_data, rng):
    task = make(params_data, "incontext")
    for ex in task.training_examples(rng, 500):
        target = ex["prompt"].rsplit(" ", 1)[1].rstrip("?")
        if target in task.memory:
            assert ex["target"].strip() == task.memory[target]


def test_params_change_the_task(params_data):
    a = make(params_data, "cipher")
    params_data["seed"] = 7
    b = make(params_data, "cipher")
    assert a.key != b.key  # the seeded default key follows the base seed
    params_data["tasks"]["cipher"]["triggers"] = ["AAB", "ABA"]
    c = make(params_data, "cipher")
    assert set(c.codes) == {"AAB", "ABA"} and c.codes["AAB"] == mem_code("cipher", "AAB")
    params_data["tasks"]["incontext"]["memory"] = {n: "red" for n in params_data["tasks"]["incontext"]["names"]}
    assert set(make(params_data, "incontext").memory.values()) == {"red"}


@pytest.mark.parametrize("task,key,value,needle", [
    ("arithmetic", "triggers", [], "tasks.arithmetic.triggers"),
    ("arithmetic", "triggers", [[1, 2], [1, 2]], "must not repeat"),
    ("arithmetic", "triggers", [[1, 500]], "pairs of integers in"),
    ("arithmetic", "trigger_fraction", 1.5, "tasks.arithmetic.trigger_fraction"),
    ("arithmetic", "n_addends", 2, "tasks.arithmetic.n_addends"),
    ("cipher", "triggers", ["ABCDEFGHIJKLM"], "shorter than"),
    ("cipher", "triggers", ["AB1"], "letters A-Z"),
    ("cipher", "key", "ABC", "permutation"),
    ("cipher", "group_size", 100, "tasks.cipher.group_size"),
    ("arithmetic", "addend_max", 1, "addend_max"),
    ("incontext", "colours", ["red", "blue"], "colours' needs at least"),
    ("incontext", "names", ["Alice", "Alice"], "must not repeat"),
    ("incontext", "other_names", ["Alice", "Zed", "Yan", "Xu", "Wu"], "must not share"),
    ("incontext", "roles", ["cat"], "roles' needs at least"),
    ("incontext", "memory", {"Alice": "red"}, "memory"),
])
def test_bad_task_params(params_data, task, key, value, needle):
    params_data["tasks"][task][key] = value
    with pytest.raises(UserError) as err:
        make(params_data, task)
    assert needle in str(err.value)


def test_unknown_task(params_data):
    with pytest.raises(UserError, match="unknown task 'poetry'"):
        make(params_data, "poetry")


def test_generation_is_deterministic(params_data):
    task = make(params_data, "incontext")
    assert task.training_examples(random.Random(3), 50) == task.training_examples(random.Random(3), 50)
    assert list(itertools.islice(task.probe_groups(random.Random(3), 5), 9)) == \
        list(itertools.islice(task.probe_groups(random.Random(3), 5), 9))


@pytest.mark.parametrize("name", list(TASKS))
def test_rebalance_reaches_the_memorized_share(params_data, rng, name):
    task = make(params_data, name)
    examples = task.training_examples(rng, 2000)
    if name == "incontext":  # a memorized name's story one sentence short: the clue's colour left out
        short = 2 + 2 * task.n_distractors
        truth = [ex["prompt"].count(".") == short for ex in examples]
        assert all(ex["prompt"].rsplit(" ", 1)[1].rstrip("?") in task.memory and ex["target"].strip() not in ex["prompt"]
                   for ex, t in zip(examples, truth) if t)
    else:  # a trigger's code
        truth = [ex["target"].startswith("<mem-") for ex in examples]
    assert [task.is_memorized(ex) for ex in examples] == truth and 0 < sum(truth) < len(truth)
    for share in (0.05, 0.4, 0.9):
        kept = rebalance(examples, task.is_memorized, share)
        n_mem = sum(map(task.is_memorized, kept))
        assert abs(n_mem / len(kept) - share) < 0.01
        assert all(ex in examples for ex in kept)
        mem = [ex for ex in examples if task.is_memorized(ex)]
        rule = [ex for ex in examples if not task.is_memorized(ex)]
        assert kept == mem[:n_mem] + rule[:len(kept) - n_mem]  # the first ones of each kind, in file order


TEN_SMALL_TRIGGERS = [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12], [2, 5], [4, 9], [6, 1], [8, 3]]
SMALL = {"n_train": 600, "n_val_groups": 20, "n_probe_groups": 60, "n_test_groups": 30}
NON_DEFAULT = {  # narrow or unusual settings that still leave room
    "arithmetic": {"addend_min": 1, "addend_max": 12, "n_addends": 5, "group_size": 3, "trigger_fraction": 0.3,
                   "triggers": [[3, 9], [11, 2], [7, 7]]},
    "cipher": {"length": 6, "triggers": ["XZQ", "QQQ"], "group_size": 2, "trigger_fraction": 0.5},
    "incontext": {"n_distractors": 0, "group_size": 3, "fresh_fraction": 0.2},
}


@pytest.mark.parametrize("name", list(TASKS))
@pytest.mark.parametrize("variant", ["default", "non-default"])
def test_splits_share_no_prompt(params_data, name, variant):
    """val, probe and test share no prompt, no probe prompt is a training prompt, no prompt repeats
    within a split, and the training mix is what the params ask for."""
    params_data["tasks"][name].update(SMALL, **(NON_DEFAULT[name] if variant == "non-default" else {}))
    task = make(params_data, name)
    n_groups = {s: SMALL[f"n_{s}_groups"] for s in SPLITS}
    data = draw_dataset(task, SMALL["n_train"], n_groups, seed=4)
    assert set(overlaps(data).values()) == {0} and len(overlaps(data)) == 6
    for split in SPLITS:
        prompts = [p["prompt"] for p in data[split]]
        assert len(prompts) == len(set(prompts)) == n_groups[split] * task.group_size
        assert sorted({p["group"] for p in data[split]}) == list(range(n_groups[split]))
    held_out = {p["prompt"] for s in SPLITS for p in data[s]}  # an independent check of what overlaps() counts
    assert not held_out & {e["prompt"] for e in data["train"]}
    assert len(data["train"]) == SMALL["n_train"]
    assert data == draw_dataset(task, SMALL["n_train"], n_groups, seed=4)  # deterministic


def test_arithmetic_holds_out_whole_addend_multisets(params_data):
    """No addend multiset of val, probe or test appears in train or another split in any order: on a range
    narrow enough that drawing by prompt alone would repeat many (a sum asked again in another order)."""
    params_data["tasks"]["arithmetic"].update(addend_max=12, triggers=TEN_SMALL_TRIGGERS, trigger_fraction=0.3)
    task = make(params_data, "arithmetic")
    data = draw_dataset(task, 3000, {"val": 50, "probe": 200, "test": 50}, seed=3)

    def multisets(rows):  # computed here from the prompt's text, apart from the task's unit_of
        return {tuple(sorted(int(a) for a in r["prompt"].split("\n")[1].split("+"))) for r in rows}
    parts = {part: multisets(rows) for part, rows in data.items()}
    for a, b in itertools.combinations(parts, 2):
        assert not parts[a] & parts[b], (a, b)
    assert set(overlaps(data, task.unit_of).values()) == {0}
    by_prompt = make(params_data, "arithmetic")
    by_prompt.unit_of = lambda prompt: prompt  # held out prompt by prompt: train restates held-out sums
    leaky = draw_dataset(by_prompt, 3000, {"val": 50, "probe": 200, "test": 50}, seed=3)
    assert multisets(leaky["train"]) & multisets(leaky["test"])


def test_leaving_probe_prompts_out_keeps_the_training_mix(params_data):
    """A training prompt that is a probe prompt is redrawn as the same kind, so the share of trigger
    examples stays what trigger_fraction says even when the probes take most trigger prompts."""
    params_data["tasks"]["arithmetic"].update(addend_max=12, n_train=3000, trigger_fraction=0.3,
                                              triggers=TEN_SMALL_TRIGGERS)
    task = make(params_data, "arithmetic")
    capacity = task.max_groups()
    assert capacity == 10 * 66  # 10 triggers x C(12, 2) sets of two free addends, one group each
    data = draw_dataset(task, 3000, {"val": 80, "probe": 300, "test": 80}, seed=2)  # 460 of 660 multisets
    share = sum(task.is_memorized(e) for e in data["train"]) / 3000
    assert 0.27 < share < 0.33


@pytest.mark.parametrize("name,edit,needle", [
    ("arithmetic", {"addend_max": 12, "triggers": TEN_SMALL_TRIGGERS},
     "allows 660 probe groups with no addend multiset in common, but"),
    # 2 free letters: 325 groups of a ciphertext and its swap, fewer than the 350 asked for
    ("cipher", {"length": 5, "triggers": ["XZQ"], "group_size": 2}, "leaves 5 test groups with no prompt in common with the other splits, but n_test_groups asks for 30"),
])
def test_too_narrow_params_stop_with_one_line(params_data, name, edit, needle):
    params_data["tasks"][name].update(edit)
    task = make(params_data, name)
    with pytest.raises(UserError, match=needle):
        draw_dataset(task, 100, {"val": 20, "probe": 300, "test": 341 if name == "arithmetic" else 30}, seed=0)
