import pytest
import torch

from memgen.errors import UserError
from memgen.models import load_run_model, new_model
from memgen.params import Params
from memgen.tasks import load_task


def test_gpt2_saves_and_loads_the_same_model(params_data, tmp_path, rng):
    params = Params(params_data)
    task = load_task(params, "cipher")
    texts = [e["prompt"] + e["target"] for e in task.training_examples(rng, 50)]
    fp = params.section("families").section("gpt2")
    model, codec, save = new_model("gpt2", fp, task, texts, seed=1)
    save(tmp_path / "run")
    loaded, loaded_codec = load_run_model("gpt2", tmp_path / "run", torch.device("cpu"), fp)
    ids = torch.tensor([codec.prompt_ids(texts[0])])
    assert loaded_codec.prompt_ids(texts[0]) == ids[0].tolist()
    with torch.no_grad():
        assert torch.equal(model.eval()(ids).logits, loaded(ids).logits)
    assert loaded_codec.decode(codec.target_ids("ABC")) == "ABC"  # decoding stops at EOS, no spaces added

    weights = tmp_path / "run" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a truncated checkpoint
    with pytest.raises(UserError, match="run/model.safetensors: not a readable safetensors file"):
        load_run_model("gpt2", tmp_path / "run", torch.device("cpu"), fp)
    with pytest.raises(UserError, match="nowhere/tokenizer.json: file not found"):
        load_run_model("gpt2", tmp_path / "nowhere", torch.device("cpu"), fp)
