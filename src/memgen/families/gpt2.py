"""gpt2: a GPT-2 trained from scratch with a task tokenizer, saved whole."""
from ..errors import UserError
from .scratch import ScratchFamily


class GPT2(ScratchFamily):
    name = "gpt2"
    sites = {
        "mlp_in": "transformer.h.{}.ln_2",   # LayerNorm-2 output, where the paper captures and steers
        "resid_post": "transformer.h.{}",    # the block's output
        "mlp_hidden": "transformer.h.{}.mlp.act",  # the MLP's hidden units after GELU: c_proj's input
    }
    paper_site = "mlp_in"

    def site_width(self, model, site):
        if site == "mlp_hidden":
            return model.config.n_inner or 4 * model.config.n_embd
        return super().site_width(model, site)

    def unit_parameters(self, model, layer):
        # Conv1D weights are [in, out]: unit j reads c_fc.weight[:, j] and c_fc.bias[j], and writes c_proj.weight[j, :]
        mlp = model.transformer.h[layer].mlp
        return [(mlp.c_fc.weight, 1), (mlp.c_fc.bias, 0), (mlp.c_proj.weight, 0)]

    def model_class(self):
        from transformers import GPT2LMHeadModel
        return GPT2LMHeadModel

    def make_config(self, fp, codec, vocab_size, n_positions):
        from transformers import GPT2Config

        m = fp.section("model")
        n_embd, n_head = m.int("n_embd", lo=8), m.int("n_head", lo=1)
        if n_embd % n_head:
            raise UserError(f"params: '{m.prefix}.n_embd' ({n_embd}) must be divisible by n_head ({n_head})")
        dropout = m.float("dropout", lo=0.0, hi=1.0)
        special = {} if codec is None else {"bos_token_id": codec.eos_id, "eos_token_id": codec.eos_id,
                                            "pad_token_id": codec.pad_id}
        return GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=m.int("n_layer", lo=1),
                          n_head=n_head, resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout, **special)


FAMILY = GPT2()
