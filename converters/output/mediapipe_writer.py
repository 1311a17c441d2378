"""Writes the standard TFLite metadata with MediaPipe's metadata writers (run as a script).

    PYTHON converters/output/mediapipe_writer.py IN.tflite OUT.tflite SPEC.json

Standalone on purpose: the only maintained writers are in mediapipe 0.10.21, which needs
numpy<2 and protobuf<5 and so cannot share an environment with TensorFlow 2.21. The
converter runs this file with the Python named by EDGELITE_METADATA_PYTHON (an environment
with ``mediapipe==0.10.21``), or imports ``write`` directly when mediapipe is importable.
SPEC.json holds {"mean": [...], "std": [...], "labels": [...]}.
"""
import json
import sys


def write(model: bytes, mean, std, labels) -> bytes:
    from mediapipe.tasks.python.metadata.metadata_writers import image_classifier, metadata_writer
    writer = image_classifier.MetadataWriter.create(
        model, input_norm_mean=list(mean), input_norm_std=list(std),
        labels=metadata_writer.Labels().add(list(labels)) if labels else None)
    populated, _ = writer.populate()
    return populated


def main(argv) -> int:
    source, target, spec_path = argv
    with open(spec_path) as fh:
        spec = json.load(fh)
    with open(source, "rb") as fh:
        model = fh.read()
    with open(target, "wb") as fh:
        fh.write(write(model, spec["mean"], spec["std"], spec.get("labels")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
