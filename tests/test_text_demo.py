"""The text demo on tiny teachers (no MiniLM): every row trains, every output is written."""

import json

import numpy as np
import pytest
from test_text_distiller import TOKENS, generator, labeler, vocabulary

from tgt_keras.apps import text_demo
from tgt_keras.data.rotten_tomatoes import TextClassificationSplit
from tgt_keras.modalities.text import WordPieceTokenizer
from tgt_keras.offline.text_teachers import TextTeachers


def tiny_split(n_train=24, n_test=12, seed=0):
    rng = np.random.default_rng(seed)
    words = TOKENS[5:]

    def texts(n):
        return [" ".join(rng.choice(words, rng.integers(2, 6))) for _ in range(n)]

    train, test = texts(n_train), texts(n_test)
    train_labels, test_labels = np.arange(n_train) % 2, np.arange(n_test) % 2
    labeled = np.arange(8)
    return TextClassificationSplit(
        train_texts=train, train_labels=train_labels, labeled_texts=[train[i] for i in labeled],
        labeled_labels=train_labels[labeled], labeled_indices=labeled, unlabeled_texts=train,
        test_texts=test, test_labels=test_labels, generator_texts=train,
        class_names=("rotten", "fresh"), name="tiny")


def tiny_teachers():
    vocab = vocabulary()
    return TextTeachers(vocab, WordPieceTokenizer(vocab, 8), labeler(vocab), generator(vocab),
                        report={"tiny": True})


def test_classification_scores_by_hand():
    scores = text_demo.classification_scores([0, 0, 1, 1], [0, 1, 1, 1], 2)
    assert scores["accuracy"] == 0.75
    # class 0: tp 1, fp 0, fn 1 -> 2/3; class 1: tp 2, fp 1, fn 0 -> 4/5
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 4 / 5) / 2)


def test_the_text_demo_writes_every_output(tmp_path):
    config = text_demo.TextDemoConfig(steps=4, epochs=2, batch_size=4, output_dir=str(tmp_path),
                                      student="text_cnn")
    methods = (*text_demo.TEXT_METHODS, text_demo.KD_ALL_UNLABELED)
    results = text_demo.run_text_demo(config, methods=methods, teachers=tiny_teachers(),
                                      split=tiny_split())
    names = [row["method"] for row in results["rows"]]
    assert names == ["teacher (MiniLM, all training labels)", *methods]
    for row in results["rows"]:
        assert 0.0 <= row["accuracy"] <= 1.0 and 0.0 <= row["macro_f1"] <= 1.0
    assert results["sizes"] == {"labeled": 8, "unlabeled": 24, "test": 12}
    assert set(results["exploration_metrics"]) == {"TGT-random", "TGT-gradient"}
    assert "synthetic_label_flips" in results["exploration_metrics"]["TGT-gradient"]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["rows"][1]["method"] == "one-hot"
    examples = (tmp_path / "examples.md").read_text().splitlines()
    assert examples[0] == "| real | reconstruction | random-explored | gradient-explored |"
    assert len(examples) == 2 + 8  # header, rule, one line per labelled text
    assert (tmp_path / "accuracy.png").read_bytes()[:4] == b"\x89PNG"
    assert list((tmp_path / "tensorboard" / "figures").iterdir())


def test_a_bad_text_demo_setting_is_named():
    with pytest.raises(ValueError, match="`student` must be one of"):
        text_demo.TextDemoConfig(student="lstm")
    with pytest.raises(ValueError, match="`methods` must be a subset of"):
        text_demo.run_text_demo(text_demo.TextDemoConfig(), methods=("TGT-magic",))


def test_the_seed_summary_and_targets_are_hand_checkable():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    import text_seeds

    def run(kd, random, gradient, reference, minilm):
        rows = [("KD", kd), ("TGT-random", random), ("TGT-gradient", gradient),
                (text_demo.KD_ALL_UNLABELED, reference), (text_demo.MINILM_FINETUNED, minilm)]
        return {"rows": [{"method": m, "accuracy": a, "macro_f1": a, "seconds": 1.0}
                         for m, a in rows]}

    summary = text_seeds.summarize([run(0.60, 0.62, 0.66, 0.70, 0.65),
                                    run(0.62, 0.62, 0.66, 0.72, 0.67)])
    assert summary["KD"]["accuracy"]["mean"] == pytest.approx(0.61)
    assert summary["KD"]["accuracy"]["std"] == pytest.approx(0.01)
    checks = text_seeds.targets(summary)
    assert checks["TGT-gradient - KD (points)"] == pytest.approx(5.0)
    assert checks["TGT-gradient >= KD + 3 points"] is True
    assert checks["TGT-random >= KD"] is True
    assert checks["share of the KD -> all-unlabelled gap closed"] == pytest.approx(0.5)
    assert checks["TGT-gradient - MiniLM fine-tuned (points)"] == pytest.approx(0.0)
