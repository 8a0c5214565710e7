"""A small TF Lite → ONNX translator for the float graphs we serve (BlazePose's detector and
landmark model), so onnxruntime runs them like every other graph of ours.

Why our own: the converters on PyPI do not take these files. `tflite2onnx` 0.4.1 stops at
DENSIFY (the detector's pruned weights are stored sparse) and mis-reads the landmark
model's PAD; `tf2onnx` imports TensorFlow for its TF Lite path too. These two graphs use a
dozen float ops, each of which has a direct ONNX counterpart, so the translation is short
and every line of it can be checked against the reference runtime (`ai-edge-litert`): see
model/export/pose.py, which refuses a conversion that differs from it.

How: constants are folded in numpy first — DEQUANTIZE of float16 weights (exactly what TF
Lite does before its float kernels run) and DENSIFY of CSR-sparse weights — so the ONNX
file holds float32 weights only. Activations run NCHW (ONNX's convolution layout): the
NHWC input is transposed once, 4-D tensors stay NCHW, and a tensor is transposed back to
NHWC where TF Lite's semantics need it (RESHAPE, graph outputs). The batch dimension is
left free (`batch`), although the .tflite files fix it to 1. Unrequested outputs and the
nodes only they need are dropped (the landmark model's segmentation mask and heatmaps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import tflite
from onnx import TensorProto, helper, numpy_helper

from runtime.errors import CheckpointError

OPSET = 17
_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
_DTYPES = {
    tflite.TensorType.FLOAT32: np.float32,
    tflite.TensorType.FLOAT16: np.float16,
    tflite.TensorType.INT32: np.int32,
    tflite.TensorType.INT64: np.int64,
    tflite.TensorType.UINT8: np.uint8,
    tflite.TensorType.INT8: np.int8,
}
NHWC_TO_NCHW, NCHW_TO_NHWC = (0, 3, 1, 2), (0, 2, 3, 1)
NHWC_AXIS_IN_NCHW = {0: 0, 1: 2, 2: 3, 3: 1, -1: 1, -2: 3, -3: 2, -4: 0}


@dataclass
class _Graph:
    model: Any
    graph: Any
    constants: dict[int, np.ndarray] = field(default_factory=dict)
    nchw: set[int] = field(default_factory=set)  # tensors held NCHW in the ONNX graph
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)

    def tensor(self, index: int) -> Any:
        return self.graph.Tensors(index)

    def shape(self, index: int) -> list[int]:
        return [int(v) for v in self.tensor(index).ShapeAsNumpy()]

    def name(self, index: int) -> str:
        return f"t{index}"

    def const(self, array: np.ndarray, hint: str) -> str:
        name = f"c{len(self.initializers)}_{hint}"
        self.initializers.append(numpy_helper.from_array(np.array(array), name))
        return name

    def node(self, op: str, inputs: Sequence[str], outputs: Sequence[str], **attrs: Any) -> None:
        self.nodes.append(
            helper.make_node(op, list(inputs), list(outputs), f"n{len(self.nodes)}", **attrs)
        )


def convert_tflite(
    source: Path, target: Path, *, outputs: Sequence[str] | None = None
) -> dict[str, Any]:
    """Write `source` (.tflite) as ONNX to `target`; keep only the graph outputs named in
    `outputs` (TF Lite names, e.g. "Identity"), all by default. Returns what was written:
    input and output names with their NHWC shapes (batch free)."""
    buffer = Path(source).read_bytes()
    model = tflite.Model.GetRootAsModel(buffer, 0)
    if model.SubgraphsLength() != 1:
        raise CheckpointError(f"{source}: expected one subgraph, got {model.SubgraphsLength()}")
    g = _Graph(model, model.Subgraphs(0))
    (input_index,) = list(g.graph.InputsAsNumpy())
    input_name = g.tensor(input_index).Name().decode()
    g.node("Transpose", [input_name], [g.name(input_index)], perm=list(NHWC_TO_NCHW))
    g.nchw.add(input_index)
    for i in range(g.graph.OperatorsLength()):
        _convert_op(g, g.graph.Operators(i))

    wanted = {g.tensor(int(j)).Name().decode(): int(j) for j in g.graph.OutputsAsNumpy()}
    names = list(outputs) if outputs is not None else list(wanted)
    unknown = sorted(set(names) - set(wanted))
    if unknown:
        raise CheckpointError(f"{source} has no outputs {unknown}; it has {sorted(wanted)}")
    graph_outputs = []
    for name in names:
        index = wanted[name]
        if index in g.nchw:
            g.node("Transpose", [g.name(index)], [name], perm=list(NCHW_TO_NHWC))
        else:
            g.node("Identity", [g.name(index)], [name])
        graph_outputs.append(_value_info(name, g.shape(index)))
    nodes = _prune(g.nodes, names)
    used = {name for node in nodes for name in node.input}
    onnx_graph = helper.make_graph(
        nodes,
        Path(source).stem,
        [_value_info(input_name, g.shape(input_index))],
        graph_outputs,
        [t for t in g.initializers if t.name in used],
    )
    onnx_model = helper.make_model(
        onnx_graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="gad-stream"
    )
    onnx_model.ir_version = 8
    onnx.checker.check_model(onnx_model, full_check=True)
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(onnx_model, str(target))
    return {
        "input": {input_name: ["batch", *g.shape(input_index)[1:]]},
        "outputs": {name: ["batch", *g.shape(wanted[name])[1:]] for name in names},
    }


def _value_info(name: str, shape: list[int]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", *shape[1:]])


def _prune(nodes: list[onnx.NodeProto], outputs: Sequence[str]) -> list[onnx.NodeProto]:
    """The nodes the requested outputs depend on, in their original order."""
    needed, keep = set(outputs), []
    for node in reversed(nodes):
        if needed & set(node.output):
            keep.append(node)
            needed.update(node.input)
    return keep[::-1]


def _options(op: Any, cls: type) -> Any:
    table = op.BuiltinOptions()
    options = cls()
    if table is not None:
        options.Init(table.Bytes, table.Pos)
    return options


def _convert_op(g: _Graph, op: Any) -> None:
    code = g.model.OperatorCodes(op.OpcodeIndex())
    kind = _NAMES.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?")
    ins = [int(j) for j in op.InputsAsNumpy()]
    (out,) = [int(j) for j in op.OutputsAsNumpy()]
    if kind == "DEQUANTIZE":
        g.constants[out] = _constant(g, ins[0]).astype(np.float32)
        return
    if kind == "DENSIFY":
        g.constants[out] = _densify(g, ins[0])
        return
    handler = _HANDLERS.get(kind)
    if handler is None:
        raise CheckpointError(f"TF Lite op {kind} is not supported by this converter")
    handler(g, op, ins, out)


def _constant(g: _Graph, index: int) -> np.ndarray:
    if index in g.constants:
        return g.constants[index]
    tensor = g.tensor(index)
    data = g.model.Buffers(tensor.Buffer()).DataAsNumpy()
    if isinstance(data, int) or tensor.Sparsity() is not None:
        raise CheckpointError(f"tensor {tensor.Name().decode()} is not a dense constant")
    dtype = _DTYPES[tensor.Type()]
    return np.frombuffer(data.tobytes(), dtype=dtype).reshape(g.shape(index))


def _index_vector(metadata: Any, segments: bool) -> np.ndarray:
    """A DimensionMetadata's CSR array_segments or array_indices (int32/uint16/uint8)."""
    kinds = {
        tflite.SparseIndexVector.Int32Vector: tflite.Int32Vector,
        tflite.SparseIndexVector.Uint16Vector: tflite.Uint16Vector,
        tflite.SparseIndexVector.Uint8Vector: tflite.Uint8Vector,
    }
    kind = metadata.ArraySegmentsType() if segments else metadata.ArrayIndicesType()
    table = metadata.ArraySegments() if segments else metadata.ArrayIndices()
    vector = kinds[kind]()
    vector.Init(table.Bytes, table.Pos)
    return np.asarray(vector.ValuesAsNumpy(), dtype=np.int64)


def _densify(g: _Graph, index: int) -> np.ndarray:
    """A sparse constant as stored by TF Lite's pruning: leading dense dimensions and the
    last one CSR (segments per row, column indices), in identity traversal order."""
    tensor = g.tensor(index)
    sparsity = tensor.Sparsity()
    shape = g.shape(index)
    order = list(sparsity.TraversalOrderAsNumpy())
    dims = [sparsity.DimMetadata(d) for d in range(sparsity.DimMetadataLength())]
    formats = [d.Format() for d in dims]
    dense, csr = tflite.DimensionType.DENSE, tflite.DimensionType.SPARSE_CSR
    if order != list(range(len(shape))) or formats != [dense] * (len(shape) - 1) + [csr]:
        raise CheckpointError(
            f"{tensor.Name().decode()}: sparse layout {formats} / order {order} is not supported"
        )
    values = np.frombuffer(
        g.model.Buffers(tensor.Buffer()).DataAsNumpy().tobytes(), dtype=_DTYPES[tensor.Type()]
    )
    rows = int(np.prod(shape[:-1]))
    segments, columns = _index_vector(dims[-1], True), _index_vector(dims[-1], False)
    if len(segments) != rows + 1 or segments[-1] != len(values) or len(columns) != len(values):
        raise CheckpointError(f"{tensor.Name().decode()}: inconsistent CSR arrays")
    out = np.zeros((rows, shape[-1]), dtype=values.dtype)
    row_of = np.repeat(np.arange(rows), np.diff(segments))
    out[row_of, columns] = values
    return out.reshape(shape)


def _activation(g: _Graph, raw: str, out: int, function: int) -> None:
    """Apply TF Lite's fused activation to `raw`, writing the op's output tensor."""
    act = tflite.ActivationFunctionType
    if function == act.NONE:
        g.node("Identity", [raw], [g.name(out)])
    elif function == act.RELU:
        g.node("Relu", [raw], [g.name(out)])
    elif function == act.RELU6:
        g.node(
            "Clip", [raw, g.const(np.float32(0), "lo"), g.const(np.float32(6), "hi")], [g.name(out)]
        )
    else:
        raise CheckpointError(f"fused activation {function} is not supported")


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TF's SAME padding on one axis: (before, after), the extra pixel after."""
    span = (kernel - 1) * dilation + 1
    total = max((-(-size // stride) - 1) * stride + span - size, 0)
    return total // 2, total - total // 2


def _spatial(g: _Graph, inp: int, kernel: tuple[int, int], options: Any, dilation=(1, 1)) -> dict:
    stride = (options.StrideH(), options.StrideW())
    pads = [0, 0, 0, 0]
    if options.Padding() == tflite.Padding.SAME:
        _, height, width, _ = g.shape(inp)
        top, bottom = _same_pads(height, kernel[0], stride[0], dilation[0])
        left, right = _same_pads(width, kernel[1], stride[1], dilation[1])
        pads = [top, left, bottom, right]
    return {"strides": list(stride), "pads": pads}


def _conv(g: _Graph, op: Any, ins: list[int], out: int, depthwise: bool = False) -> None:
    cls = tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions
    options = _options(op, cls)
    weight = _constant(g, ins[1]).astype(np.float32)  # [O, KH, KW, I] or [1, KH, KW, C·M]
    channels = g.shape(ins[0])[3]
    if depthwise:
        weight = weight.transpose(3, 0, 1, 2)  # [C·M, 1, KH, KW]
        group = channels
    else:
        weight = weight.transpose(0, 3, 1, 2)
        group = 1
    dilation = (options.DilationHFactor(), options.DilationWFactor())
    attrs = _spatial(g, ins[0], weight.shape[2:], options, dilation)
    inputs = [g.name(ins[0]), g.const(weight, "w")]
    if len(ins) > 2 and ins[2] >= 0:
        inputs.append(g.const(_constant(g, ins[2]).astype(np.float32), "b"))
    raw = f"{g.name(out)}_raw"
    g.node("Conv", inputs, [raw], group=group, dilations=list(dilation), **attrs)
    _activation(g, raw, out, options.FusedActivationFunction())
    g.nchw.add(out)


def _depthwise(g: _Graph, op: Any, ins: list[int], out: int) -> None:
    _conv(g, op, ins, out, depthwise=True)


def _pad(g: _Graph, op: Any, ins: list[int], out: int) -> None:
    pads = _constant(g, ins[1]).reshape(4, 2)[list(NHWC_TO_NCHW)]
    onnx_pads = np.concatenate([pads[:, 0], pads[:, 1]]).astype(np.int64)
    g.node("Pad", [g.name(ins[0]), g.const(onnx_pads, "pads")], [g.name(out)], mode="constant")
    g.nchw.add(out)


def _add(g: _Graph, op: Any, ins: list[int], out: int) -> None:
    if not all(j in g.nchw for j in ins):
        raise CheckpointError("ADD is supported between two 4-D activations only")
    raw = f"{g.name(out)}_raw"
    g.node("Add", [g.name(j) for j in ins], [raw])
    _activation(g, raw, out, _options(op, tflite.AddOptions).FusedActivationFunction())
    g.nchw.add(out)


def _max_pool(g: _Graph, op: Any, ins: list[int], out: int) -> None:
    options = _options(op, tflite.Pool2DOptions)
    kernel = (options.FilterHeight(), options.FilterWidth())
    raw = f"{g.name(out)}_raw"
    g.node(
        "MaxPool",
        [g.name(ins[0])],
        [raw],
        kernel_shape=list(kernel),
        **_spatial(g, ins[0], kernel, options),
    )
    _activation(g, raw, out, options.FusedActivationFunction())
    g.nchw.add(out)


def _depth_to_space(g: _Graph, op: Any, ins: list[int], out: int) -> None:
    # TF's depth_to_space (NHWC) orders the moved channels as ONNX's "DCR" mode does.
    block = _options(op, tflite.DepthToSpaceOptions).BlockSize()
    g.node("DepthToSpace", [g.name(ins[0])], [g.name(out)], blocksize=block, mode="DCR")
    g.nchw.add(out)


def _resize_bilinear(g: _Graph, op: Any, ins: list[int], out: int) -> None:
    options = _options(op, tflite.ResizeBilinearOptions)
    if options.AlignCorners():
        mode = "align_corners"
    elif options.HalfPixelCenters():
        mode = "half_pixel"
    else:
        mode = "asymmetric"
    _, height, width, _ = g.shape(ins[0])
    out_h, out_w = (int(v) for v in _constant(g, ins[1]))
    scales = np.array([1, 1, out_h / height, out_w / width], dtype=np.float32)
    g.node(
        "Resize",
        [g.name(ins[0]), "", g.const(scales, "scales")],
        [g.name(out)],
        mode="linear",
        coordinate_transformation_mode=mode,
    )
    g.nchw.add(out)


def _reshape(g: _Graph, op: Any, ins: list[int], out: int) -> None:
    source = g.name(ins[0])
    if ins[0] in g.nchw:  # TF Lite reshapes in NHWC order
        source = f"{g.name(ins[0])}_nhwc"
        g.node("Transpose", [g.name(ins[0])], [source], perm=list(NCHW_TO_NHWC))
    shape = np.array(g.shape(out), dtype=np.int64)
    shape[0] = 0  # keep the (free) batch dimension
    g.node("Reshape", [source, g.const(shape, "shape")], [g.name(out)])


def _concatenation(g: _Graph, op: Any, ins: list[int], out: int) -> None:
    options = _options(op, tflite.ConcatenationOptions)
    axis = options.Axis()
    if all(j in g.nchw for j in ins):
        axis = NHWC_AXIS_IN_NCHW[axis]
        g.nchw.add(out)
    elif any(j in g.nchw for j in ins):
        raise CheckpointError("CONCATENATION of 4-D and other tensors is not supported")
    raw = f"{g.name(out)}_raw"
    g.node("Concat", [g.name(j) for j in ins], [raw], axis=axis)
    _activation(g, raw, out, options.FusedActivationFunction())


def _logistic(g: _Graph, op: Any, ins: list[int], out: int) -> None:
    g.node("Sigmoid", [g.name(ins[0])], [g.name(out)])
    if ins[0] in g.nchw:
        g.nchw.add(out)


_HANDLERS = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "PAD": _pad,
    "ADD": _add,
    "MAX_POOL_2D": _max_pool,
    "DEPTH_TO_SPACE": _depth_to_space,
    "RESIZE_BILINEAR": _resize_bilinear,
    "RESHAPE": _reshape,
    "CONCATENATION": _concatenation,
    "LOGISTIC": _logistic,
}
