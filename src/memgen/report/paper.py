"""The paper's own numbers and setting, which the report sets beside ours (arXiv 2412.18497)."""

# Headline success rates of steering across GPT-2 / Llama-3.2 and tasks.
SUCCESS = {"m2g": (0.659, 0.923), "g2m": (0.193, 0.676)}
# Pair yield (probe groups with both behaviours), from the paper's earlier version.
PAIR_YIELD = {"incontext": 0.11, "arithmetic": 0.085}
SETTING = ("every decoding step, at the MLP's normalised input (GPT-2's LayerNorm-2 output) or the decoder "
           "layer output (Llama), the top 5 % of neurons by |rho| moved by alpha x NMD with alpha 3")
TRAINING = "LoRA r=8 on q_proj, v_proj, on the data's own mix (~7 % triggers)"
CLAIMS = {"random": "near-zero random effect", "m2g_easier": "generally",
          "intra": "consistent across independently retrained adapters", "inter": "partly transfer between tasks"}

# Chang, Thomason and Jia, "Do Localization Methods Actually Localize Memorized Data in LLMs?" (NAACL 2024): on
# GPT-2, sequences injected into 1 % of the MLP units, each method's recall of those units in its top 1 % (%).
CHANG_GPT2_RECALL = {"hard_concrete": 49.5, "slimming": 48.1, "zero_out": 24.9, "integrated_gradients": 20.5,
                     "activations": 3.0, "random": 1.0}
