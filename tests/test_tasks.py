import itertools
import random

import pytest

from memgen.errors import UserError
from memgen.params import Params
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
            assert all(task.decode(ct) == p["gen"] for ct, p in zip(cts, group))
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
