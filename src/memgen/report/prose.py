"""The report's fixed paragraphs: what each section measures and how to read it."""
from ..experiment import NULL_NAMES

LEAD = ("Does moving the neurons that tell memorization from generalization apart move a model's outputs from "
        "memorized to generalizing (M->G) and back (G->M)? First the paper's own method, as the paper and the authors' "
        "code run it, over seeds, with a verdict per claim; then our own operating point, labelled with what differs.")

PAPER_METHOD = ("The paper's method: the top-N neurons by |rho| over every layer, each moved by alpha x NMD at every "
                "decoding step, at the family's paper site (GPT-2: the MLP's normalised input, LayerNorm-2's output; "
                "Llama: the decoder layer's output, where the shifts accumulate down the stream as the authors' code "
                "adds them: steer.paper_stream). At the authors' grid the point is chosen on val (per direction, by the "
                "same rule as ours) and measured once on test. Each cell: the mean over {n_seeds} seed(s) of the test "
                "success, its 95 % cluster-bootstrap interval (seeds, then probe groups) and each seed's value; before "
                "the readout: as many neurons, none in the last block. The paper's ranges: {ranges}.")

OURS = ("What differs from the paper's method: our grid (params topN, alpha, schedule, site, vector) searches the block "
        "output (resid_post) instead of the paper's GPT-2 site, the discriminant direction beside NMD, the prompt end "
        "alone beside every step, an adaptive strength beside fixed ones and topN up to 0.2; at a residual-stream site "
        "our shifts are increments (each neuron sits at its own value at every shifted layer) where the authors' add "
        "up. Success on held-out test probes at the point chosen on val, beside the strongest of the matched nulls and "
        "the ranking's chance level.")

INTRO = ("Every rate below is measured once on held-out test probes, with its 95 % Wilson interval and the count "
         "it rests on (k/n). Everything that was chosen (the checkpoint, the intervention's operating point) was "
         "chosen on val probes; no two parts (train, val, probe, test) share a prompt, nor, for arithmetic, an addend "
         "multiset in any order.")

INTERVENTION = ("An intervention moves the top-N neurons of one site: along NMD with neurons ranked by |rho| (the "
                "paper), or along the discriminant direction (NMD's component along a shrinkage-regularised Fisher "
                "discriminant of the MEM and GEN states: the direction a linear classifier reads them by), neurons "
                "ranked by their shift). It is applied at every "
                "decoding step (the paper) or at the last prompt position only, with a fixed alpha or an adaptive "
                "one: per prompt, the smallest alpha of the ladder at which the output changes (a closed loop on the "
                "model's own output that never reads the answers).")

CHANCE = ("The ranking's chance level: MEM and GEN are swapped within random pairs (a permutation that keeps each "
          "pair one of each) and rho recomputed for every neuron; p95 is the 95th percentile of the largest |rho| "
          "over the permutations. A run whose neurons all lie below it found nothing the pairing does not give by "
          "chance: its steering is reported but not counted as evidence.")

CONTROLS = ("Each null is matched to the steer it sits beside, at the same point, schedule and dose, and drawn "
            "many times (the draws' mean, the central 95 % of their success rates, and the empirical p = (1 + draws at "
            f"or above the targeted success) / (draws + 1)): {NULL_NAMES['random_neurons']}: as many random neurons "
            "in each layer as the steer moves there, outside its set, with that layer's shift sizes and random signs; "
            f"{NULL_NAMES['random_direction']}: a dense random direction over the steer's layers with its shift's "
            f"norm in each; {NULL_NAMES['random_sign']}: the steer's own neurons and sizes with random signs. "
            "With the adaptive strength every null climbs the same ladder with the same stopping rule as the steer. "
            f"Beside them, {NULL_NAMES['authors_baseline']}: random neurons anywhere shifted by U(-m, m) x alpha, m "
            "the steer's largest shift, as the authors' code runs it: reported, not counted. A null that changes "
            "no output on val is flagged (cannot fail here) and never counted as evidence. Specificity: of the "
            "outputs an arm changed, the share that landed on the target.")

TWO_WAYS = ("Success two ways: the exact target answer (the paper's measure) and the route: the output left the "
            "source behaviour at all (no longer the memorized code for M->G, no longer the rule's answer for G->M), "
            "whether it reached the target or broke to OTHER.")

DOSE = ("Dose-response at the chosen point's schedule, site, vector and topN: the share of test probes whose "
        "output has changed (dashed) and has reached the target answer (solid) at or below each alpha of the ladder.")

LAYERS = "Only one layer's selected neurons at a time, at each direction's chosen point."

OTHER = ("How steering fails: the first few outputs of the targeted steer, at each setting, that are neither "
         "answer.")

SEARCH = ("The design space on val: for each schedule, site and vector, the best val success over topN and alpha "
          "(with OTHER at that point). The full table is in each run's search.json.")

ACROSS_SEEDS = ("Each cell: the mean over {n_seeds} seed(s) of the test success, its 95 % interval from a two-stage "
                "cluster bootstrap ({n_resamples} resamples: draw as many seeds as there are, with replacement, then "
                "within each drawn seed its probe groups, with replacement; percentile interval), and each seed's own "
                "value. Prompts of a probe group share their memory, so groups, not prompts, are resampled. With one "
                "seed the interval covers the probe groups only: the spread between seeds is not known.")

INTRA = ("Neurons found on one replicate steer the model of another (rows: where the neurons come from; columns: "
         "the model steered). The diagonal is each run's own steer. On gpt2_shared (and llama) every replicate is an "
         "adapter retrained with its own seed on one fixed base, so neuron i is the same unit in each: the paper's "
         "intra-task claim. A family trained from scratch (gpt2) starts each replicate from its own random init, so "
         "neuron i of one has no relation to neuron i of another: its matrix is a negative control, expected at "
         "chance off the diagonal. A cell with fewer than 30 test prompts to move is not evaluable.")

INTER = ("Neurons found on task A steer the model on task B. On gpt2_shared (and llama) each task's adapter sits on "
         "one shared base, so a neuron index means the same unit; a gpt2 in runs.multitask is one model trained on "
         "every task, its neurons found per task; otherwise (gpt2) per-task models trained apart, a negative "
         "control. The diagonal is a task steered with its own neurons. A cell with fewer than 30 test prompts to "
         "move is not evaluable.")

COMPARISON_POINTS = ("Each comparison is measured at two settings: the paper's own, and each source run's val-chosen "
                     "point for the direction (its neurons and direction, as its steer stage chose them). A transfer "
                     "ratio divides a cell's success by the column's own (the diagonal), with a 95 % interval that "
                     "resamples the column's probe groups; beside each column, a random control matched to its own "
                     "selection (as many random neurons per layer, the same shift sizes, random signs). A ratio is read "
                     "only where the column's own steer is an effect: on at least 30 test prompts and above its control's "
                     "95th percentile (over an effect a random selection matches, a ratio means nothing).")

PREDICT = ("Per site and layer, a logistic-regression classifier on the captured state predicts MEM vs GEN on held-out pairs "
           "(both prompts of a pair on the same side; chance 50 %); the input-only baseline is the same classifier "
           "on the prompt's tokens in order (each token with its position from either end, and 1-3-grams; a bag of "
           "tokens could not tell a pair apart, its two prompts holding the same tokens).")

NOTES = ("In arithmetic and cipher the MEM answer is a `<mem-XXXXXXXX>` code, a token string of its own (as in the "
         "paper), so a classifier or a steer may key on the output format; in incontext both answers are colour words. "
         "Runs without MEM/GEN pairs are reported as such, not steered. In arithmetic an OTHER output is mostly a "
         "wrong sum: steered off the memorized code, the model adds no better than it does unsteered.")


def training(parts, paper_training):
    """How each family was trained where that differs from the paper."""
    share = (" mem_share is the share of training examples only memory answers (triggers; incontext stories "
             "without the clue's colour), raised for the Llama adapter so a few hundred CPU steps meet enough of "
             "them." if any("mem_share" in p for p in parts) else "")
    return f"Training ({'; '.join(parts)}).{share} The paper: {paper_training}."
PLANTED = ("Would the ranking find the right neurons if we knew them? Per task, a GPT-2 learns the rule alone (every "
           "training example that shows a memory left out; for the code tasks, decoy triggers with codes of their own, "
           "so it learns how a code is written), then the task's memories are taught to a few random MLP hidden units "
           "alone (their input and output weights; every other weight stays bit-identical). The pipeline then finds "
           "the planted model's pairs and ranks every hidden unit as for any run. Recall: the share of the planted "
           "units among the k best-scored units, k their number (at that k precision is the same number); AUROC: how "
           "often a planted unit outscores an unplanted one. The gradient scores read the margin D of the MEM answer's "
           "first token over the GEN answer's at each pair's MEM prompt: gradient x activation, |mean of a x dD/da|, and "
           "attribution patching, |mean of (a_MEM - a_GEN) x dD/da| (to first order, how much D falls when the unit takes "
           "its GEN-prompt value). A random ranking's recall is k/N (its 95th percentile beside it) and its AUROC 0.5 "
           "(the 95 % band beside it). The planting teaches first what each code says (its first token, where the MEM "
           "and GEN answers part, left out of the loss), then when to write it, checkpoint by val pair yield among "
           "those that answer most val probes from memory (plant.min_mem); where plant.keep is above 0, both phases also "
           "keep the rule model's answers (a KL term from it at the rule examples' answer tokens). The rule accuracy "
           "is measured on fresh "
           "prompts without a trigger, by the rule model and by the planted one. Strong planting: val MEM at least "
           "{mem} %, the rule accuracy down at most {rule_drop} points, at least {pairs} pairs (what a localizer can be "
           "judged on).")
LOCALIZERS = ("Per task, every score side by side over its planted draws (each its own rule model, units and planting): "
              "recall of the planted units in its top k (k their number) and AUROC, each the mean over the draws with a "
              "95 % Student-t interval (clipped to the measure's range); the deletion test: the score's top k units zeroed at every position, the share of "
              "the test prompts the model answered from memory that it still does (MEM kept: lower is a better "
              "localizer) and of those it answered by the rule that it still does (GEN kept: higher is better). The "
              "field's localizers (Chang et al., NAACL 2024) read memorized training examples (trigger -> code), their "
              "answer's loss with the weights frozen: activations (mean |a| at the memorized prompt ends), zero-out (the "
              "loss's rise with the unit zeroed), integrated gradients (along the path scaling the unit's layer from 0), "
              "slimming (a mask from 1 under an L1 penalty) and hard concrete (stochastic gates under an expected-L0 "
              "penalty), with localize's settings. How Chang et al.'s GPT-2 column differs: they inject pretraining-like "
              "sequences into 1 % of a pretrained GPT-2's MLP units and score recall in the top 1 %; here trigger -> code "
              "memories are planted into a few units of a small GPT-2 trained from scratch on the rule, and k is the "
              "planted count (the same measure at this model's share).")

PLANTED_STEER = ("Steering the planted model at the hidden units, per direction on held-out test probes: the planted "
                 "units (the oracle) and the top k by |rho| (the method; k the planted count), each moved by alpha x "
                 "NMD at its own schedule and alpha chosen on val (the engine's rule), every arm and null climbing the "
                 "same ladder under the adaptive strength; beside the ranked units, their matched null: as many random "
                 "units in each of their layers, with their shift sizes and random signs, drawn many times (mean "
                 "success, the central 95 % of the draws, empirical p). p oracle > ranked: one-sided Fisher exact test.")
METHODS_SCOPES = ("Where each method's effect lives: every method searched again on val within each scope "
                  "(before the readout: no layer of the last block, whose output is the readout's input; at the MLP's "
                  "hidden units: the same methods on the hidden units' states), then measured once on test beside its "
                  "own random direction; a cell names its val-chosen candidate.")
PLANTED_SIDE = ("A draw marked side run is not in the default `dvc repro` (params plant.tasks): its results were made by "
                "{commands} and committed in metrics/sweeps/ (experiments/planted_side.py), with the planting settings "
                "that command names.")
PLANTING_VARIANTS = ("Where a planting costs the rule, the same rule model planted several ways (made by `{command}`, "
                     "committed in metrics/sweeps/): the rule accuracy on the fresh prompts (150 of them at each "
                     "checkpoint of the when-to-write phase, all of them at the end) says when the rule is lost, and the "
                     "misses say how: answered with a code (a trigger seen where there is none) or with a sum one off "
                     "(the rule's own computation moved). The last row moves the planted units' weights by random "
                     "noise as large as the planting's own move, with no training: the rule's fragility to any change "
                     "of those units. Every variant plants without the rule-keeping term (plant.keep 0).")
PLANTED_FOUND = ("Then steering with what each score found, over the task's planted draws: its top k units (k the planted "
                 "count) moved by alpha x NMD on every held-out test probe at two doses: the paper's setting (steer.paper's "
                 "schedule and alpha) and the point the oracle chose on val (its schedule and alpha above), beside the "
                 "planted units (the oracle) and random units matched to them (as many in each planted layer, with their "
                 "shift sizes and random signs; mean over the draws). A score that found the planted units steers as the "
                 "oracle does. The success is each draw's rate, its mean and a 95 % Student-t interval over the draws "
                 "(clipped to 0-100); p oracle > it: one-sided Fisher exact test per draw. Power: of a two-sided test at "
                 "0.05 to tell a rate 10 points from the oracle's with this many probes in each arm (normal approximation; "
                 "the arms share their probes, so pairing can only add to it).")
METHODS = ("Is the paper's intervention the right one? Beside its NMD shift of the top-N neurons by |rho| (over every "
           "layer), three methods a researcher would try, each at one layer of the residual stream: the dense mean "
           "difference of the MEM and GEN states (contrastive activation addition), the direction a linear probe reads "
           "the behaviour by (the discriminant, scaled so that strength 1 moves a state by the class means' distance "
           "along it: inference-time intervention), and patching the state a share of the way to the target "
           "behaviour's mean (shares above 1 overshoot it), on any schedule. Per direction each method takes its own "
           "candidate on val probes (its schedule, layer or topN, and strength; the engine's rule) from a search "
           "budget of the same size, then is measured once on held-out test probes, all on the same probes, each "
           "beside its own random direction (same layers, per-layer norm, schedule and strength; for patching a "
           "random target as far from the source's mean state), drawn many times; the paper's own setting (not "
           "chosen) beside them. p: one-sided Fisher exact tests above and below the NMD shift; against the random "
           "direction, the empirical p over its draws.")

SCOPE = ("Each test measurement is made in every scope of steer.scopes: with the point's neurons taken from every "
         "layer; with the same number taken from the layers before the last block (before_readout), whose output goes "
         "straight to the final norm and the unembedding; and with the same point at the MLP's hidden units (mlp_hidden: "
         "the units after the activation, the paper's word \"neuron\" taken literally; topN stays a fraction of them). "
         "Each scope has its own matched nulls (the same layers, counts and norms as its own selection). A success "
         "that holds before the readout moves the model's computation, not only the state the readout reads.")
