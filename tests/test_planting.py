"""The ground-truth experiment's parts: units chosen and masked, scores against the truth, decoys."""
import pytest
import torch
import yaml
from transformers import GPT2Config, GPT2LMHeadModel

from memgen.errors import UserError
from memgen.families import gpt2
from memgen.params import Params
from memgen.planting import auroc, chance, choose_units, content_first, decoy_task, localization, rule_keeping_loss, \
    rule_prompts, top_k_hits, train_only, truth_mask, unit_masks, with_decoys
from memgen.sites import capture_last, shift_last
from memgen.tasks import load_task
from memgen.tasks.base import Task
from memgen.training import encode_examples, is_better, optimizer_step, right_pad


def tiny_gpt2():
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=20, n_positions=16, n_embd=16, n_layer=3, n_head=2))


def test_only_the_planted_units_weights_move_and_every_other_weight_stays_bit_identical():
    model = tiny_gpt2()
    units = choose_units(3, 64, [1, 2], 3, seed=5)
    assert sorted(units) == [1, 2] and all(len(u) == 3 for u in units.values())
    handles = train_only(model, unit_masks(gpt2.FAMILY, model, units))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=0.05, weight_decay=0.0)
    ids = torch.randint(0, 20, (4, 10), generator=torch.Generator().manual_seed(1))
    for _ in range(5):
        optimizer_step(model, trainable, optimizer, ids, torch.ones_like(ids), ids)
    for h in handles:
        h.remove()
    for name, p in model.named_parameters():
        changed = p.detach() != before[name]
        layer = int(name.split(".")[2]) if name.startswith("transformer.h.") else None
        planted = units.get(layer)
        if planted is not None and name.endswith("mlp.c_fc.weight"):
            inside = torch.zeros_like(changed)
            inside[:, planted] = True
        elif planted is not None and name.endswith("mlp.c_fc.bias"):
            inside = torch.zeros_like(changed)
            inside[planted] = True
        elif planted is not None and name.endswith("mlp.c_proj.weight"):
            inside = torch.zeros_like(changed)
            inside[planted, :] = True
        else:
            inside = torch.zeros_like(changed)
        assert not (changed & ~inside).any(), name  # bit-identical outside the planted units
        if inside.any():
            assert changed[inside].float().mean() > 0.9, name  # and the planted units did learn


def test_the_unit_site_reads_and_moves_the_mlp_hidden_units():
    model = tiny_gpt2().eval()
    units, blocks = gpt2.FAMILY.site_modules(model, "mlp_hidden"), gpt2.FAMILY.site_modules(model, "resid_post")
    assert gpt2.FAMILY.site_width(model, "mlp_hidden") == 64
    ids = torch.tensor([[1, 2, 3, 4]])
    states, base = [[] for _ in units], [[] for _ in blocks]
    with torch.no_grad(), capture_last(units, states), capture_last(blocks, base):
        model(ids)
    assert [s[0].shape for s in states] == [torch.Size([1, 64])] * 3
    # a unit is what c_proj reads: moving unit 7 of layer 2 by 1 moves that block's output by c_proj's row 7
    moved = [[] for _ in blocks]
    with torch.no_grad(), shift_last(units, {2: (torch.tensor([7]), torch.tensor([1.0]))}), \
            capture_last(blocks, moved):
        model(ids)
    assert torch.equal(moved[1][0], base[1][0])
    assert torch.allclose(moved[2][0] - base[2][0], model.transformer.h[2].mlp.c_proj.weight[7].detach(), atol=1e-5)


def test_recall_and_auroc_against_hand_computed_values():
    score = torch.tensor([[0.9, 0.1, 0.5], [0.3, 0.8, 0.2]])
    truth = torch.tensor([[True, False, False], [False, True, False]])
    assert top_k_hits(score, truth, 2) == 2 and auroc(score, truth) == 1.0
    # ties: scores 3, 1, 2, 2 with units 0 and 3 planted. Top 2 (stable): units 0 and 2, one hit.
    # AUROC: 3 beats 1 and 2 (2 wins); 2 beats 1 and ties 2 (1.5): 3.5 of 4 pairs.
    score, truth = torch.tensor([3.0, 1.0, 2.0, 2.0]), torch.tensor([True, False, False, True])
    assert top_k_hits(score, truth, 2) == 1 and auroc(score, truth) == pytest.approx(0.875)
    scored = localization({"s": score}, truth, [1, 2, 4])["s"]
    assert scored["recall"] == 0.5 and scored["recall_at"] == {1: 0.5, 2: 0.5, 4: 1.0}
    assert auroc(-score, truth) == pytest.approx(0.125)  # a reversed ranking
    # a random ranking: 2 of 4 planted, top 2 holds one in expectation (recall 0.5); AUROC centred on 0.5
    c = chance(4, 2, 2)
    assert c["recall"] == pytest.approx(0.5) and c["auroc_band"][0] < 0.5 < c["auroc_band"][1]
    assert chance(2048, 16, 16)["recall"] == pytest.approx(16 / 2048)


def test_truth_mask_and_unit_choice_are_checked():
    mask = truth_mask({1: torch.tensor([0, 2])}, 2, 3)
    assert mask.tolist() == [[False, False, False], [True, False, True]]
    assert choose_units(4, 512, [1, 2], 8, seed=3)[1].tolist() == choose_units(4, 512, [1, 2], 8, seed=3)[1].tolist()
    with pytest.raises(UserError, match="plant.layers"):
        choose_units(2, 8, [2], 1, seed=0)
    with pytest.raises(UserError, match="units_per_layer"):
        choose_units(2, 8, [1], 9, seed=0)


def test_decoys_carry_codes_of_their_own_and_rule_examples_that_carry_a_decoy_are_left_out():
    params = Params(yaml.safe_load(open("params.yaml")))
    real = params.section("tasks").section("cipher").raw("triggers")
    decoy = decoy_task(params, "cipher", ["ABC", "DEF"])
    rule = [{"prompt": decoy.prompt("QWERTYUIOPABC"), "target": "rule"},
            {"prompt": decoy.prompt("QWERTYUIOPXYZ"), "target": "rule"}]
    kept, drawn = with_decoys(rule, decoy, 50, held_out=frozenset(), seed=1)
    assert kept == rule[1:]  # its ciphertext ends in a decoy trigger: the decoy's code answers it now
    assert len(drawn) == 50 and all(e["target"] == decoy.codes[decoy.trigger_in(e["prompt"])] for e in drawn)
    assert {decoy.trigger_in(e["prompt"]) for e in drawn} == {"ABC", "DEF"}
    assert not set(decoy.codes.values()) & set(load_task(params, "cipher").codes.values())
    _, again = with_decoys(rule, decoy, 50, held_out={drawn[0]["prompt"]}, seed=1)
    assert drawn[0]["prompt"] not in {e["prompt"] for e in again}
    with pytest.raises(UserError, match="own triggers"):
        decoy_task(params, "cipher", [real[0]])
    adder = decoy_task(params, "arithmetic", [[1, 2]])
    assert adder.trigger_in("Input:\n5+6+1+2\nTarget:\n") == (1, 2)
    assert adder.trigger_in("Input:\n5+6+2+1\nTarget:\n") is None


class CharCodec:
    """One id per character, EOS and padding 0: enough to read what encode_examples puts in the loss."""
    eos_id = pad_id = 0

    def prompt_ids(self, text):
        return [ord(c) for c in text]

    def target_ids(self, text):
        return [ord(c) for c in text] + [self.eos_id]


def test_the_content_phase_leaves_only_a_memorized_answers_first_token_out_of_the_loss():
    params = Params(yaml.safe_load(open("params.yaml")))
    task = load_task(params, "cipher")
    code = next(iter(task.codes.values()))
    examples = [{"prompt": "P:", "target": code}, {"prompt": "Q:", "target": "ABC"}]
    marked = content_first(examples, task.is_memorized)
    assert marked[1] == examples[1] and marked[0]["loss_from"] == 1 and "loss_from" not in examples[0]
    (ids, labels), (_, rule_labels) = encode_examples(CharCodec(), marked)
    assert ids == [ord(c) for c in "P:" + code] + [0]
    assert labels == [-100] * 3 + [ord(c) for c in code[1:]] + [0]  # the prompt and "<" unscored: what follows is
    assert rule_labels == [-100] * 2 + [ord(c) for c in "ABC"] + [0]


def test_the_planting_checkpoint_wants_memory_first_then_pair_yield():
    row = lambda step, mem, other, pair_yield: {"step": step, "mem": mem, "other": other, "pair_yield": pair_yield}  # noqa
    strong, weak = row(500, 0.85, 0.05, 0.10), row(300, 0.60, 0.05, 0.40)
    assert is_better(strong, weak, max_other=0.1, min_mem=0.8)  # less pair yield, but the memory took
    assert not is_better(weak, strong, max_other=0.1, min_mem=0.8)
    assert is_better(weak, strong, max_other=0.1)  # the train stage's rule: pair yield alone
    kept = {**row(400, 0.82, 0.05, 0.10), "rule_accuracy": 0.70}
    lost = {**row(500, 0.90, 0.05, 0.20), "rule_accuracy": 0.60}
    assert is_better(lost, kept, max_other=0.1, min_mem=0.8)  # more pair yield, when the rule is not asked about
    assert is_better(kept, lost, max_other=0.1, min_mem=0.8, min_rule=0.65)  # the rule kept wins when it is
    assert not is_better(lost, kept, max_other=0.1, min_mem=0.8, min_rule=0.65)
    garbled = row(550, 0.90, 0.20, 0.50)
    assert not is_better(garbled, weak, max_other=0.1, min_mem=0.8)  # OTHER above the bound never qualifies
    assert is_better(row(600, 0.85, 0.05, 0.10), strong, max_other=0.1, min_mem=0.8)  # a tie: the later one
    assert is_better(row(50, 0.0, 0.3, 0.0), row(100, 0.0, 0.4, 0.0), max_other=0.1, min_mem=0.8)  # least OTHER


def test_rule_prompts_are_fresh_carry_no_trigger_and_are_answered_by_the_rule():
    params = Params(yaml.safe_load(open("params.yaml")))
    task = load_task(params, "cipher")
    taken = {e["prompt"] for e in rule_prompts(task, 20, set(), seed=3)}
    fresh = rule_prompts(task, 50, taken, seed=3)
    assert len({e["prompt"] for e in fresh}) == 50 and not taken & {e["prompt"] for e in fresh}
    assert all(task.trigger_in(e["prompt"]) is None for e in fresh)
    assert all(e["target"] == task.plaintext(e["prompt"].split(":", 1)[1].split(" ", 1)[0]) for e in fresh)
    assert fresh == rule_prompts(task, 50, taken, seed=3)


def test_rule_prompts_say_so_when_the_task_has_too_few_fresh_ones():
    class OnePrompt:  # a task whose rule has a single prompt
        params_key = "tasks.tiny"
        draw_outside = Task.draw_outside

        def draw_example(self, rng, kind):
            return {"prompt": "P", "target": "T"}

        def unit_of(self, prompt):
            return prompt
    assert rule_prompts(OnePrompt(), 1, set(), seed=0) == [{"prompt": "P", "target": "T"}]
    with pytest.raises(UserError, match="fewer than plant.rule_prompts"):
        rule_prompts(OnePrompt(), 2, set(), seed=0)


def test_the_rule_keeping_term_is_zero_at_the_rule_model_and_holds_its_answers_while_units_learn_a_memory():
    codec = CharCodec()
    rule = [{"prompt": f"{a}+{b}=", "target": str((a + b) % 10)} for a in range(8) for b in range(8)]
    memories = [{"prompt": "9+9=", "target": "X"}, {"prompt": "8+9=", "target": "Y"}]
    mem_ids, mem_mask, mem_labels = right_pad(encode_examples(codec, memories), 0, "cpu")

    def plant(weight):
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=128, n_positions=16, n_embd=16, n_layer=2, n_head=2,
                                           resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                           initializer_range=0.5))  # a frozen readout that can be confident
        drift = rule_keeping_loss(model, codec, rule, 1.0, len(rule), seed=0)  # every rule example, each call
        assert drift(model).item() < 1e-6  # the rule model keeps itself
        handles = train_only(model, unit_masks(gpt2.FAMILY, model, {0: torch.arange(8), 1: torch.arange(8)}))
        keep = rule_keeping_loss(model, codec, rule, weight, 16, seed=1) if weight else None
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(trainable, lr=0.03)
        for _ in range(80):
            optimizer_step(model, trainable, optimizer, mem_ids, mem_mask, mem_labels, keep)
        for h in handles:
            h.remove()
        answers = model(input_ids=mem_ids[:, :4]).logits[:, -1].argmax(-1).tolist()
        return answers, drift(model).item()

    answers_plain, drift_plain = plant(0.0)
    answers_kept, drift_kept = plant(1.0)
    assert answers_plain == answers_kept == [ord("X"), ord("Y")]  # the memories are learned either way
    assert drift_kept < drift_plain / 5  # but the rule prompts' answers move far less with the term
