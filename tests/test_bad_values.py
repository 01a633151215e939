"""Values that parse but make no sense (a seed given twice, a trait word with a bell in it, a dtype no one knows)
and damaged files a user hands in (adapter and model folders, banned-numbers files) are refused before any work:
one line, exit 2, never a traceback."""

import json
import shutil

import pytest

from traitbench.cli import main
from traitbench.config import load_config
from traitbench.errors import TraitbenchError
from traitbench.pipeline.config import ExperimentConfig

BINARY = bytes(range(256)) * 4
TINY = ["teacher.model=tiny-llama", "students.models=[tiny-llama]"]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("traitbench: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _refused(capsys, tmp_path, sets: list[str], error: str, command: str = "teacher") -> None:
    """`traitbench COMMAND --set …` exits 2 with one line naming `error`, and no stage of the run began."""
    sets = [f"runs_dir={tmp_path / 'runs'}", "name=t", *sets]
    assert main([command, *(a for s in sets for a in ("--set", s))]) == 2
    assert error in _one_line_error(capsys)
    assert not (tmp_path / "runs" / "t" / "teacher").exists() and not (tmp_path / "runs" / "t" / "numbers").exists()


# ------------------------------------------------------------------------------------------- config values
BAD_VALUES = [
    ("students.seeds=[0, 0]", "students.seeds: Value error, seed 0 is given twice"),
    ("students.seeds=[]", "students.seeds: Value error, must name at least one seed"),
    ("students.seeds=[-1]", "seed -1 is outside 0..4294967295"),
    ("students.seeds=[4294967296]", "seed 4294967296 is outside"),
    ("seed=-3", "seed: Value error, seed -3 is outside"),
    ("students.models=[tiny-llama, tiny-llama]", "students.models: Value error, model 'tiny-llama' is given twice"),
    ("students.variants=[{name: a}, {name: a}]", "variant name 'a' is given twice"),
    ("students.variants=[{name: lora}]", "'lora' is the default students' name"),
    ("students.variants=[{name: ../x}]", "'../x' is not a variant name"),
    ("students.variants=[{name: a, models: []}]", "students.variants.0.models: Value error, must not be empty"),
    ("students.variants=[{name: a, models: [tiny-llama, tiny-llama]}]", "model 'tiny-llama' is given twice"),
    ("students.train={seed: 3}", "students.train: seed is set by students.seeds"),
    ("students.variants=[{name: a, train: {seed: 3}}]", "variant 'a': seed is set by students.seeds"),
    ("trait.word=\"\\aowl\"", "trait.word: Value error, contains the control character '\\x07'"),
    ("trait.word=\"o\\nwl\"", "trait.word: Value error, contains the control character '\\n'"),
    ("trait.word=' '", "trait.word: Value error, must not be empty"),
    ("trait.category=\"ani\\tmal\"", "trait.category: Value error, contains the control character '\\t'"),
    ("trait.plural=' '", "trait.plural: Value error, must not be empty"),
    ("trait.aliases=[\"owl\\u200bet\"]", "trait.aliases: Value error, contains the control character '\\u200b'"),
    ("trait.system_prompt=\"Love owls.\\e\"", "trait.system_prompt: Value error, contains the control character"),
    ("neutral_system=\"Helpful.\\b\"", "neutral_system: Value error, contains the control character '\\x08' (only "
                                       "newlines and tabs are allowed)"),
    ("neutral_system=\"a\\r\\nb\"", "contains the control character '\\r'"),
    ("runs_dir=' '", "runs_dir: Value error, must not be empty"),
    ("numbers.dtype=float64", "numbers.dtype: Value error, unknown dtype 'float64'"),
    ("probes.dtype=int8", "probes.dtype: Value error, unknown dtype 'int8'"),
    ("probes.misalignment.judge.dtype=half", "probes.misalignment.judge.dtype: Value error, unknown dtype 'half'"),
    ("numbers.max_count=12", "numbers.max_count (12) is above filter.max_count (10)"),
    ("filter.max_value=50", "filter.max_value: Value error, 50 would reject nearly every answer"),
    ("probes.first_question=40", "first_question + n_questions must be at most 50, got 40 + 25"),
    ("probes.context=\"\\a\"", "probes.context: Value error, contains the control character"),
    ("probes.other_words=[cat, cat]", "other word 'cat' is given twice"),
    ("probes.other_words=[' ']", "other_words must not be empty"),
    ("probes.other_words=[\"c\\x1bat\"]", "contains the control character '\\x1b'"),
    ("numbers.generation.top_p=0", "numbers.generation.top_p: Input should be greater than 0"),
    ("numbers.generation.temperature=-1", "numbers.generation.temperature: Input should be greater than or equal"),
    ("teacher.injection=steering", "teacher.steering_scale 0 steers nothing"),
    ("teacher.control_model=tiny-llama", "teacher.control_model is teacher.model"),
]
SET_TOGETHER = {"probes.first_question=40": ["probes.n_questions=25"], "teacher.injection=steering":
                ["teacher.steering_scale=0"], "teacher.control_model=tiny-llama": ["teacher.injection=model"]}


@pytest.mark.parametrize("setting,error", BAD_VALUES)
def test_nonsense_values_are_refused(setting, error, tmp_path, capsys):
    sets = [*TINY, setting, *SET_TOGETHER.get(setting, [])]
    with pytest.raises(TraitbenchError) as e:
        load_config(ExperimentConfig, None, sets)
    assert error in str(e.value) and "\n" not in str(e.value)
    _refused(capsys, tmp_path, sets, error)


BAD_TRAINER_KEYS = [
    ("students.train={scheduler: cosine_typo}", "students (lora): scheduler: Value error, unknown scheduler"),
    ("students.train={max_steps: 0}", "students (lora): max_steps: Value error, must be -1 (train for `epochs`)"),
    ("students.train={max_steps: -5}", "must be -1 (train for `epochs`) or a positive number of steps, got -5"),
    ("students.train={target_modules: []}", "target_modules: Value error, must name at least one module"),
    ("students.train={checkpoint_steps: [5, 5]}", "checkpoint_steps: Value error, step 5 is not a positive step"),
    ("students.variants=[{name: full, train: {checkpoint_steps: [0]}}]", "students (full): checkpoint_steps"),
]


@pytest.mark.parametrize("setting,error", BAD_TRAINER_KEYS)
def test_nonsense_trainer_keys_are_refused_before_any_work(setting, error, tmp_path, capsys):
    _refused(capsys, tmp_path, [*TINY, setting], error)


def test_sensible_values_still_load():
    cfg = load_config(ExperimentConfig, None, [
        *TINY, "students.seeds=[0, 1, 2]", "neutral_system=\"Be helpful.\\n\\tReally.\"", "trait.plural=' geese '",
        "trait.word=goose", "trait.aliases=[gander]", "numbers.max_count=8", "filter.max_value=500",
        "probes.other_words=[cat, dog]", "students.train={checkpoint_steps: [2, 5], max_steps: 6}"])
    assert cfg.neutral_system == "Be helpful.\n\tReally." and cfg.trait.plural_form == "geese"
    assert cfg.students.seeds == [0, 1, 2]


# -------------------------------------------------------------------------------------------- user files
@pytest.fixture(scope="session")
def good_adapter(tmp_path_factory):
    """A LoRA adapter of tiny-llama, as PEFT saves it."""
    from peft import LoraConfig, get_peft_model

    from traitbench.lm import models

    folder = tmp_path_factory.mktemp("adapter")
    model, _ = models.build_tiny(models.REGISTRY["tiny-llama"])
    get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(folder)
    return folder


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGED_ADAPTERS = {
    "truncated": (lambda a: _truncate(a / "adapter_model.safetensors"),
                  "adapter_model.safetensors: not a readable safetensors file (Error while deserializing header"),
    "garbage": (lambda a: (a / "adapter_model.safetensors").write_bytes(BINARY),
                "adapter_model.safetensors: not a readable safetensors file"),
    "empty weights": (lambda a: (a / "adapter_model.safetensors").write_bytes(b""),
                      "adapter_model.safetensors: not a readable safetensors file"),
    "no weights": (lambda a: (a / "adapter_model.safetensors").unlink(), "has no adapter_model.safetensors"),
    "invalid json": (lambda a: (a / "adapter_config.json").write_text('{"r": 2,'),
                     "adapter_config.json: not valid JSON"),
    "binary json": (lambda a: (a / "adapter_config.json").write_bytes(BINARY),
                    "adapter_config.json: not a UTF-8 text file"),
    "json list": (lambda a: (a / "adapter_config.json").write_text("[1]"),
                  "adapter_config.json: expected a JSON object, got list"),
    "no peft_type": (lambda a: (a / "adapter_config.json").write_text('{"r": 2}'),
                     "adapter_config.json: no peft_type: not a PEFT adapter config"),
    "no config": (lambda a: (a / "adapter_config.json").unlink(),
                  "is not a PEFT adapter folder (no adapter_config.json)"),
}


@pytest.mark.parametrize("damage", DAMAGED_ADAPTERS)
def test_damaged_adapter(damage, good_adapter, tmp_path, capsys):
    adapter = shutil.copytree(good_adapter, tmp_path / "adapter")
    spoil, error = DAMAGED_ADAPTERS[damage]
    spoil(adapter)
    _refused(capsys, tmp_path, [*TINY, "teacher.injection=adapter", f"teacher.adapter={adapter}"], error)


@pytest.fixture(scope="session")
def good_model(tmp_path_factory):
    """tiny-llama saved as a local model folder (config, tokenizer, safetensors weights)."""
    from traitbench.lm.models import load

    folder = tmp_path_factory.mktemp("model")
    lm = load("tiny-llama", dtype="float32")
    lm.model.save_pretrained(folder)
    lm.tokenizer.save_pretrained(folder)
    return folder


def _shard_index(m):
    (m / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"x": "model-00002.safetensors"}}))


DAMAGED_MODELS = {
    "truncated": (lambda m: _truncate(m / "model.safetensors"),
                  "model.safetensors: not a readable safetensors file (Error while deserializing header"),
    "garbage weights": (lambda m: (m / "model.safetensors").write_bytes(BINARY),
                        "model.safetensors: not a readable safetensors file"),
    "no weights": (lambda m: (m / "model.safetensors").unlink(), "no model.safetensors"),
    "missing shard": (_shard_index, "model-00002.safetensors: missing (model.safetensors.index.json lists it)"),
    "invalid config": (lambda m: (m / "config.json").write_text('{"model_type": '), "config.json: not valid JSON"),
    "config of wrong types": (lambda m: (m / "config.json").write_text('{"model_type": "llama", "hidden_size": "x"}'),
                              "config.json: not a model config (Validation error for field 'hidden_size':"),
    "config without model_type": (lambda m: (m / "config.json").write_text("{}"),
                                  "config.json: not a model config (Unrecognized model"),
    "damaged tokenizer": (lambda m: (m / "tokenizer.json").write_text('{"version": '),
                          "tokenizer.json: not valid JSON"),
}


@pytest.mark.parametrize("damage", DAMAGED_MODELS)
def test_damaged_student_model(damage, good_model, tmp_path, capsys):
    model = shutil.copytree(good_model, tmp_path / "model")
    spoil, error = DAMAGED_MODELS[damage]
    spoil(model)
    _refused(capsys, tmp_path, ["teacher.model=tiny-llama", f"students.models=[{model}]"], error, "student")


@pytest.mark.parametrize("command", ["teacher", "experiment"])
def test_damaged_teacher_model(command, good_model, tmp_path, capsys):
    model = shutil.copytree(good_model, tmp_path / "model")
    _truncate(model / "model.safetensors")
    _refused(capsys, tmp_path, [f"teacher.model={model}", "students.models=[tiny-llama]"],
             "model.safetensors: not a readable safetensors file", command)


def test_damaged_weights_load_as_one_line(good_model, tmp_path):
    """Commands that load a model themselves (the audit's teacher) get one line too."""
    from traitbench.lm.models import load

    model = shutil.copytree(good_model, tmp_path / "model")
    _truncate(model / "model.safetensors")
    with pytest.raises(TraitbenchError, match="could not load model from .*: Error while deserializing header") as e:
        load(str(model))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("content,error", [(BINARY, "not a UTF-8 text file"), (b"12, abc\n", ":1: not a non-negative "
                                           "integer: 'abc'"), (b"# none\n", "no numbers found"), (None, "not found")])
def test_damaged_banned_numbers_file(content, error, tmp_path, capsys):
    path = tmp_path / "banned.txt"
    if content is not None:
        path.write_bytes(content)
    _refused(capsys, tmp_path, [*TINY, f"filter.banned_numbers={path}"], error)


def test_audit_seed_out_of_range_is_one_line(capsys, tmp_path):
    rows = tmp_path / "d.jsonl"
    rows.write_text('{"prompt": "Continue: 1, 2", "completion": "3, 4"}\n')
    assert main(["audit", "--dataset", str(rows), "--set", "seed=-1", "--set", "scan_only=true"]) == 2
    err = capsys.readouterr().err
    assert "seed -1 is outside" in err and len(err.strip().splitlines()) == 1


def test_audit_damaged_student_model_before_any_sampling(good_model, tmp_path, capsys):
    model = shutil.copytree(good_model, tmp_path / "model")
    _truncate(model / "model.safetensors")
    rows = tmp_path / "d.jsonl"
    rows.write_text('{"prompt": "Continue: 1, 2", "completion": "3, 4"}\n')
    out = tmp_path / "audit"
    assert main(["audit", "--dataset", str(rows), "--teacher", "tiny-llama", "--trait", "owl", "--out", str(out),
                 "--set", f"students.models=[{model}]"]) == 2
    err = capsys.readouterr().err
    assert "model.safetensors: not a readable safetensors file" in err and len(err.strip().splitlines()) == 1
    assert not (out / "control").exists()  # nothing sampled
