"""The pair store (pairs.json): the MEM/GEN pairs the probe stage found, each [MEM prompt, GEN
prompt]; its writer and its reader."""
from .io import read_json, require_keys, write_json


def write_pairs(path, probes, pairs):
    """pairs: (index of the MEM probe, index of the GEN probe) into probes."""
    write_json(path, {"pairs": [[probes[m]["prompt"], probes[g]["prompt"]] for m, g in pairs]})


def read_pairs(path):
    """[[MEM prompt, GEN prompt], ...]"""
    return require_keys(read_json(path), ["pairs"], path)["pairs"]
