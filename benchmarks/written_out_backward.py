"""What our layers' two speed-ups each buy on TensorFlow, side by side.

    python benchmarks/written_out_backward.py                  # both shapes
    python benchmarks/written_out_backward.py --shapes mnist --cells lstm

Our layers (`kerasrnn.LSTM` / `GRU` / `SimpleRNN`) differ from
`keras.layers.RNN(our cell)` in two ways: they multiply the inputs of all
steps by `kernel` before the loop, and on TensorFlow their gradient is the
written-out backward pass (kerasrnn/bptt.py). This separates the two:

- keras:          the built-in layer, the reference for every ratio;
- cell:           `keras.layers.RNN(our cell)`: neither;
- layer-autodiff: our layer with the written-out pass turned off: the input
                  matmul out of the loop, autodiff of the loop;
- layer:          our layer as it is: both.

Same shapes, data, timing and interleaving as benchmarks/cells.py (whose
contenders this reuses); our LSTM and GRU layers run with `use_cudnn=False`,
so on a GPU too this times our loops.
"""

import argparse
import statistics

import keras
from cells import (
    CELLS,
    SHAPES,
    KerasContender,
    _contenders,
    _ratio,
    add_common_arguments,
    layer_options,
    print_table,
    shapes_and_cells,
    time_rounds,
)


def _autodiff(layer_cls):
    """`layer_cls` with its written-out backward pass off: `choose_paths`
    then gives it the layer's loop, differentiated by TensorFlow."""
    return type(f"{layer_cls.__name__}Autodiff", (layer_cls,), {"has_written_out": False})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser)
    args = parser.parse_args()
    shapes, cells = shapes_and_cells(parser, args)
    if keras.backend.backend() != "tensorflow":
        parser.error("the written-out backward pass is TensorFlow's only: KERAS_BACKEND=tensorflow")
    keras.utils.set_random_seed(0)

    names = ["keras", "cell", "layer-autodiff", "layer"]
    header = ["shape", "cell", *names] + [f"{n}/keras" for n in names[1:]]
    rows = []
    for shape_name in shapes:
        shape = SHAPES[shape_name]
        for cell in cells:
            built = _contenders(shape, cell, ["keras", "ours", "layer"])
            our_layer = CELLS[cell][1]
            autodiff_layer = _autodiff(our_layer)(shape["units"], **layer_options(shape, our_layer))
            contenders = {  # in this order in each round
                "keras": built["keras"],
                "cell": built["ours"],
                "layer-autodiff": KerasContender(shape, autodiff_layer),
                "layer": built["layer"],
            }
            rates = time_rounds(contenders, args.epochs)
            row = [shape_name, cell] + [f"{statistics.median(rates[n]):,.0f}" for n in names]
            row += [_ratio(rates[n], rates["keras"]) for n in names[1:]]
            rows.append(row)
            print(" | ".join(row), flush=True)

    print_table(header, rows, args.epochs)


if __name__ == "__main__":
    main()
