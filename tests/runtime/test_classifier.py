"""The classifier on real digit scans and real photos."""
import numpy as np
import pytest
from PIL import Image

import edgelite
from edgelite.runtime.errors import InputError, ModelError
from tests.conftest import DIGITS_FLOAT, DIGITS_INT8, MODELS, ROOT, default_cpu_delegate


@pytest.fixture(scope="module")
def clf():
    return edgelite.load(DIGITS_INT8)


def test_int8_model_reads_real_digits(clf, heldout_digits):
    images, labels = heldout_digits
    predicted = np.array([int(clf.classify(im, top_k=1).top.label) for im in images])
    accuracy = (predicted == labels).mean()
    assert accuracy >= 0.95, accuracy


def test_int8_agrees_with_float_on_real_digits(clf, heldout_digits):
    float_clf = edgelite.load(DIGITS_FLOAT)
    images, _ = heldout_digits
    agree = np.mean([clf.classify(im, 1).top.id == float_clf.classify(im, 1).top.id for im in images])
    assert agree >= 0.97, agree


def test_classification_result(clf, digit_png):
    result = clf.classify(digit_png, top_k=3)
    assert result.top.label == "7" and result.top.id == 7
    assert len(result.classes) == 3 and result.classes[0].score >= result.classes[1].score
    assert result.delegate == default_cpu_delegate()
    assert set(result.timings_ms) == {"preprocess", "invoke", "postprocess"}
    assert result.to_dict()["classes"][0] == {"id": 7, "label": "7", "score": result.top.score}


def test_every_kind_of_source_gives_the_same_answer(clf, digit_png):
    expected = clf.classify(digit_png).classes
    image = Image.open(digit_png)
    for source in (str(digit_png), digit_png.read_bytes(), image, np.asarray(image)):
        assert clf.classify(source).classes == expected


def test_run_and_scores(clf, digit_png):
    raw = clf.run_tensor(clf.preprocess(digit_png))
    assert raw.dtype == np.uint8
    scores = clf.scores(raw)
    assert scores.dtype == np.float32 and abs(float(scores.sum()) - 1.0) < 0.02


def test_input_spec_and_metadata(clf):
    assert clf.input_spec.source == "metadata" and (clf.input_spec.height, clf.input_spec.width) == (32, 32)
    assert clf.metadata.record["task"] == "image-classification"
    assert clf.labels == tuple(str(i) for i in range(10))


def test_logits_model_gets_softmax_and_derived_spec(photos):
    clf = edgelite.load(MODELS / "logits_int8.tflite")
    assert clf.output_kind == "logits" and clf.input_spec.source == "derived"
    result = clf.classify(photos[0], top_k=5)
    assert abs(sum(c.score for c in result.classes) - 1.0) < 1e-3
    assert all(c.label is None for c in result.classes)


def test_label_and_preprocessing_overrides(tmp_path, photos):
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n\nc\n")
    clf = edgelite.load(MODELS / "gray_float.tflite", labels=labels, mean=(127.5,), std=(127.5,), resize="letterbox")
    assert clf.labels == ("a", "b", "c")
    assert clf.input_spec.source == "override" and clf.input_spec.resize == "letterbox"
    assert clf.classify(photos[0]).top.label in ("a", "b", "c")


def test_label_count_mismatch(tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("only\ntwo\n")
    with pytest.raises(InputError, match=r"labels\.txt: 2 labels for a model with 10 classes"):
        edgelite.load(DIGITS_INT8, labels=labels)


@pytest.mark.parametrize("name, message", [
    ("two_inputs", "has 2 inputs; edgelite feeds one image"),  # load() tries the raw-outputs task for it
    ("vector_input", r"input .* has shape \[1, 10\]; the classifier feeds \[batch, height, width"),
])
def test_models_the_classifier_cannot_feed(name, message):
    with pytest.raises(ModelError, match=message):
        edgelite.load(MODELS / f"{name}.tflite")


def test_shared_classifier_across_threads_matches_single_thread(clf, heldout_digits):
    from concurrent.futures import ThreadPoolExecutor
    images = list(heldout_digits[0][:60])
    expected = [clf.classify(im).classes for im in images]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda im: clf.classify(im).classes, images * 4))
    assert got == expected * 4


def test_batch_classification_and_bad_images(clf, digit_png, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    outcomes = dict(clf.run_many([digit_png, bad]))
    assert outcomes[digit_png].top.label == "7"
    assert isinstance(outcomes[bad], InputError) and "bad.png" in str(outcomes[bad])
    assert [r.top.label for r in clf.classify_batch([digit_png, digit_png])] == ["7", "7"]


def test_load_reads_the_model_file_once_even_when_it_infers_the_task(monkeypatch, digit_png):
    """``load`` looks inside the file to choose the task object, then hands what it read to the model."""
    from edgelite.runtime.modelfile import files
    reads = []
    real = files.read_regular

    def counting(path, *args, **kwargs):
        reads.append(str(path))
        return real(path, *args, **kwargs)
    monkeypatch.setattr(files, "read_regular", counting)
    model = edgelite.load(str(DIGITS_INT8), trust=True)
    assert type(model).__name__ == "Classifier"  # the record says classify
    assert reads == [str(DIGITS_INT8)]
    assert model.classify(str(digit_png)).top.label == "7"


@pytest.mark.parametrize("model, task", [(DIGITS_INT8, None), (DIGITS_FLOAT, "embed"), (DIGITS_FLOAT, "raw"),
                                         (MODELS / "ssd_postprocess.tflite", None), (MODELS / "gray_float.tflite", None)])
def test_warm_up_runs_the_whole_task_once_for_every_kind(model, task):
    """predict warms the model up (decode, preprocessing, invoke, the task's decoding) on a blank PNG before it
    times any image: it must work for every task and input, colour or grey."""
    from edgelite.runtime.tasks.loading import load
    loaded = load(model, task=task)
    loaded.warm_up()
    assert loaded.run(str(ROOT / "examples" / "images" / "digit_3.png")).task == loaded.task


def test_task_options_are_typed_and_an_unknown_one_is_refused():
    """Options are a TaskOptions, checked on construction; a misspelt keyword is one line, not silently ignored
    (``thread=2`` used to run with the backend's default threads)."""
    import edgelite
    from edgelite import TaskOptions
    with pytest.raises(InputError, match=r"unknown option thread; the options are delegate, threads, backend"):
        edgelite.load(DIGITS_INT8, thread=2)
    with pytest.raises(InputError, match="threads must be a whole number of at least 1, not 0"):
        TaskOptions(threads=0)
    with pytest.raises(InputError, match="threads must be a whole number of at least 1, not True"):
        TaskOptions(threads=True)
    clf = edgelite.load(DIGITS_INT8, options=TaskOptions(threads=1, labels=[f"d{i}" for i in range(10)]), fast=False)
    assert clf.options == TaskOptions(threads=1, labels=[f"d{i}" for i in range(10)], fast=False)
    assert clf.fast is False and clf.labels[7] == "d7"
