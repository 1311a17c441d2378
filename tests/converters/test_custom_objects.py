"""A .keras file of a model with a custom layer: registered classes load by name, unregistered ones need
custom_objects= (passed through), and without them the error is one line saying what to give."""
import numpy as np
import pytest

import edgelite
from edgelite.converters.errors import ConversionError

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def custom_file(tmp_path_factory):
    import keras

    class ScaledRelu(keras.layers.Layer):  # not registered: only custom_objects= can rebuild it
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return keras.ops.relu(x) * self.factor

        def get_config(self):
            return {**super().get_config(), "factor": self.factor}

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3)(inputs)
    x = ScaledRelu(1.5)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    path = tmp_path_factory.mktemp("custom") / "custom.keras"
    model.save(path)
    return path, ScaledRelu, model


def test_unregistered_custom_layer_says_what_to_give(tmp_path, custom_file, digit_folders):
    path, _, _ = custom_file
    with pytest.raises(ConversionError, match=r"custom\.keras: cannot load the Keras model: it uses custom class\(es\) "
                                              r"ScaledRelu that this process does not know; register them .* or pass "
                                              r"custom_objects= in Python"):
        edgelite.convert(path, output=tmp_path / "c.tflite", calibration=digit_folders[0], calibration_count=20)


def test_custom_objects_are_passed_through_and_every_output_verified(tmp_path, custom_file, digit_folders):
    path, layer, model = custom_file
    result = edgelite.convert(path, output=tmp_path / "c.tflite", calibration=digit_folders[0], calibration_count=40,
                              custom_objects={"ScaledRelu": layer}, io="float32", labels=["a", "b", "c"], input_range="0,255",
                              max_accuracy_drop=100)
    assert result.verification is not None and result.verification.task == "classify"
    assert result.verification.snr_db >= 20.0
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=result.output)
    interpreter.allocate_tensors()
    x = np.random.default_rng(0).uniform(0, 255, (1, 8, 8, 1)).astype(np.float32)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(out, np.asarray(model(x)), atol=0.05)  # the custom layer's math survived
