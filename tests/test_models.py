import pytest
import torch

from memgen.errors import UserError
from memgen.families import BUILT_IN
from memgen.params import Params
from memgen.tasks import load_task


def test_gpt2_saves_and_loads_the_same_model(params_data, tmp_path, rng):
    params = Params(params_data)
    task = load_task(params, "cipher")
    texts = [e["prompt"] + e["target"] for e in task.training_examples(rng, 50)]
    fp = params.section("families").section("gpt2")
    gpt2 = BUILT_IN["gpt2"]
    model, codec, save = gpt2.new_model(fp, texts, seed=1)
    save(tmp_path / "run")
    loaded, loaded_codec = gpt2.load_model(tmp_path / "run", torch.device("cpu"), fp)
    ids = torch.tensor([codec.prompt_ids(texts[0])])
    assert loaded_codec.prompt_ids(texts[0]) == ids[0].tolist()
    with torch.no_grad():
        assert torch.equal(model.eval()(ids).logits, loaded(ids).logits)
    assert loaded_codec.text(codec.target_ids("ABC")) == "ABC"  # decoding stops at EOS, no spaces added

    weights = tmp_path / "run" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a truncated checkpoint
    with pytest.raises(UserError, match="run/model.safetensors: not a readable safetensors file"):
        gpt2.load_model(tmp_path / "run", torch.device("cpu"), fp)
    with pytest.raises(UserError, match="nowhere/tokenizer.json: file not found"):
        gpt2.load_model(tmp_path / "nowhere", torch.device("cpu"), fp)
