"""Op families: which TensorFlow ops behave alike for graph surgery, in one place.

Passes, the drift comparison and the view ask "is this an identity?", "is this random?", "does
this call a function?" here, so each family is written once. Families nest where the ops do:
:data:`IDENTITY_OPS` ⊂ :data:`PASS_THROUGH_OPS` ⊂ :data:`REMOVABLE_PASS_THROUGH_OPS`.

:func:`follow_identities` is the one walk from a tensor up through identity-like ops to the
tensor that really produces it.
"""
from __future__ import annotations

from .graph import INPUT_OPS, Graph, InputRef, NodeDef, format_input, parse_input

__all__ = ["INPUT_OPS"]  # re-exported: graph inputs are an op family too

# ---------------------------------------------------------------------------- identities
#: Output 0 is input 0, value for value, always.
IDENTITY_OPS = frozenset({"Identity", "RefIdentity", "Snapshot", "StopGradient",
                          "PreventGradient"})
#: Output 0 is input 0 whenever the op runs (``CheckNumerics`` raises on NaN/Inf instead).
PASS_THROUGH_OPS = IDENTITY_OPS | {"CheckNumerics"}
#: What *remove identity* bypasses: the pass-through ops, and ``IdentityN`` (output i is
#: input i).
REMOVABLE_PASS_THROUGH_OPS = PASS_THROUGH_OPS | {"IdentityN"}

# ---------------------------------------------------------------------------- control flow
SWITCH_OPS = frozenset({"Switch", "RefSwitch"})
MERGE_OPS = frozenset({"Merge", "RefMerge"})
#: v1 while loops: a Switch/Merge touching these belongs to a loop, not a cond.
LOOP_OPS = frozenset({"Enter", "RefEnter", "Exit", "RefExit", "NextIteration",
                      "RefNextIteration", "LoopCond"})
FRAME_ENTER_OPS = frozenset({"Enter", "RefEnter"})
FRAME_EXIT_OPS = frozenset({"Exit", "RefExit"})
#: v1 control flow: values depend on which branch or iteration runs.
CONTROL_FLOW_OPS = SWITCH_OPS | MERGE_OPS | LOOP_OPS | {"ControlTrigger", "_SwitchN"}

# ---------------------------------------------------------------------------- functions
#: Functional conditionals: ``If`` picks then_branch/else_branch by a scalar.
IF_OPS = frozenset({"If", "StatelessIf"})
CASE_OPS = frozenset({"Case", "StatelessCase"})
WHILE_OPS = frozenset({"While", "StatelessWhile"})
#: Plain calls of one library function (``f`` attribute).
PARTITIONED_CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})
#: Every op whose work lives in the function library (a graph's own library functions used
#: as ops are calls too: see :meth:`Graph.function_names`).
FUNCTION_CALL_OPS = (IF_OPS | CASE_OPS | WHILE_OPS | PARTITIONED_CALL_OPS
                     | {"SymbolicGradient", "RemoteCall"})

# ---------------------------------------------------------------------------- random
#: Stateful random ops: their values differ on every run.
RANDOM_OPS = frozenset({"RandomUniform", "RandomUniformInt", "RandomStandardNormal",
                        "TruncatedNormal", "RandomShuffle", "Multinomial", "RandomGamma",
                        "RandomPoisson", "RandomPoissonV2", "ParameterizedTruncatedNormal"})
#: Draws uniform on [0, 1): the source of a dropout mask.
UNIFORM_RANDOM_OPS = frozenset({"RandomUniform", "StatelessRandomUniform",
                                "StatelessRandomUniformV2"})


def is_random(op: str) -> bool:
    """Random number generators, stateful or not (a seeded stateless one is still "random" to
    a user reading the graph, and dropout masks are made of them)."""
    return ("Random" in op or op in RANDOM_OPS
            or op in ("StatelessMultinomial", "StatelessTruncatedNormal"))


# ---------------------------------------------------------------------------- variables
#: Reference variables (TF1): an Identity reading one *is* the variable's read.
REF_VARIABLE_OPS = frozenset({"VariableV2", "Variable", "TemporaryVariable"})
VARIABLE_OPS = REF_VARIABLE_OPS | {"VarHandleOp"}


def op_def(op: str):
    """The registered OpDef of ``op``, or None (an unregistered op or a library function).
    Asks TensorFlow's registry through its C API (:mod:`.tfc`: no TensorFlow Python runtime)."""
    from .tfc import op_def as registered
    return registered(op)


# ---------------------------------------------------------------------------- the walk
def follow_identities(graph: Graph, tensor: str, ops=IDENTITY_OPS,
                      ) -> tuple[InputRef, list[str]]:
    """Walk from ``tensor`` up through ``ops`` (output 0 reads data input 0) to the tensor
    that produces it. Returns that tensor and the names of the nodes on the way, the source
    node last (when it exists). Stops at a missing node, a cycle, or a port other than 0."""
    ref = parse_input(tensor)
    chain: list[str] = []
    while ref.node in graph.nodes and ref.node not in chain:
        node = graph.nodes[ref.node]
        chain.append(ref.node)
        if node.op not in ops or ref.port != 0:
            break
        data = _first_data(node)
        if data is None:
            break
        ref = parse_input(data)
    return ref, chain


def trace_source(graph: Graph, tensor: str) -> str:
    """The tensor that feeds ``tensor`` through pass-through ops (Identity, Snapshot, ...)."""
    ref, _ = follow_identities(graph, tensor, PASS_THROUGH_OPS)
    return format_input(ref.node, ref.port)


def const_source(graph: Graph, tensor: str) -> tuple[NodeDef | None, list[str]]:
    """The Const ``tensor`` reads through identity ops (or None), and the nodes on the way."""
    ref, chain = follow_identities(graph, tensor, IDENTITY_OPS)
    node = graph.nodes.get(ref.node)
    if node is not None and node.op == "Const" and ref.port == 0:
        return node, chain
    return None, chain


def _first_data(node: NodeDef) -> str | None:
    for t in node.input:
        if not t.startswith("^"):
            return t
    return None


# ---------------------------------------------------------------------------- pure ops
# A model file is untrusted input. Evaluating one of its nodes ahead of time (constant folding,
# deciding a cond, a dropout rate) must not touch a file, the network, a queue or a random
# state, whatever its attributes say: a ``DebugIdentity`` whose ``debug_urls`` is
# ``file:///...`` writes there when run, and is not marked stateful; ``ImmutableConst`` reads a
# memory region; ``WriteFile``/``Save``/``PrintV2``/``PyFunc``... A denylist misses the next such
# op, so this is an allowlist: arithmetic, comparisons, reductions, shape and layout, casts, and
# the neural-network kernels of an inference graph — ops that read only their inputs and write
# only their outputs. :func:`consteval.may_evaluate` (the one hook) refuses every other op.
_MATH = """
Abs AccumulateNV2 Acos Acosh Add AddN AddV2 All Angle Any ApproximateEqual ArgMax ArgMin Asin
Asinh Atan Atan2 Atanh BatchMatMul BatchMatMulV2 BatchMatMulV3 Betainc Bucketize Cast Ceil
ClipByValue Complex ComplexAbs Conj Cos Cosh Cross Cumprod Cumsum CumulativeLogsumexp Digamma Div
DivNoNan Equal Erf Erfc Erfinv EuclideanNorm Exp Expm1 Floor FloorDiv FloorMod Greater
GreaterEqual Igamma Igammac Imag Inv IsFinite IsInf IsNan Less LessEqual Lgamma LinSpace Log
Log1p LogicalAnd LogicalNot LogicalOr MatMul Max Maximum Mean Min Minimum Mod Mul MulNoNan Ndtri
Neg NextAfter NotEqual Polygamma Pow Prod Range Real RealDiv Reciprocal Rint Round Rsqrt
SegmentMax SegmentMean SegmentMin SegmentProd SegmentSum Select SelectV2 Sigmoid Sign Sin Sinh
Sqrt Square SquaredDifference Sub Sum Tan Tanh TruncateDiv TruncateMod UnsortedSegmentMax
UnsortedSegmentMin UnsortedSegmentProd UnsortedSegmentSum Xdivy Xlog1py Xlogy Zeta
BitwiseAnd BitwiseOr BitwiseXor Invert LeftShift PopulationCount RightShift
"""
_ARRAY = """
BatchToSpace BatchToSpaceND Bitcast BroadcastArgs BroadcastGradientArgs BroadcastTo Concat
ConcatOffset ConcatV2 ConjugateTranspose Const DepthToSpace Dequantize Diag DiagPart EnsureShape
ExpandDims ExtractImagePatches ExtractVolumePatches FakeQuantWithMinMaxArgs
FakeQuantWithMinMaxVars FakeQuantWithMinMaxVarsPerChannel Fill Gather GatherNd GatherV2 Identity
IdentityN InvertPermutation ListDiff LowerBound MatrixBandPart MatrixDiag MatrixDiagPart
MatrixDiagPartV2 MatrixDiagPartV3 MatrixDiagV2 MatrixDiagV3 MatrixSetDiag MatrixSetDiagV2
MatrixSetDiagV3 MirrorPad OneHot OnesLike Pack Pad PadV2 PreventGradient QuantizeAndDequantizeV2
QuantizeAndDequantizeV3 QuantizeAndDequantizeV4 QuantizeV2 Rank Reshape Reverse ReverseSequence
ReverseV2 ScatterNd Shape ShapeN Size Slice Snapshot SpaceToBatch SpaceToBatchND SpaceToDepth
Split SplitV Squeeze StopGradient StridedSlice TensorScatterAdd TensorScatterMax
TensorScatterMin TensorScatterSub TensorScatterUpdate TensorStridedSliceUpdate Tile Transpose
Unique UniqueV2 Unpack UnravelIndex UpperBound Where ZerosLike NoOp
"""
_NN = """
AvgPool AvgPool3D BatchNormWithGlobalNormalization BiasAdd BiasAddV1 Conv Conv2D
Conv2DBackpropInput Conv3D Conv3DBackpropInputV2 DataFormatDimMap DataFormatVecPermute
DepthwiseConv2dNative Dilation2D Elu FusedBatchNorm FusedBatchNormV2 FusedBatchNormV3
FusedPadConv2D FusedResizeAndPadConv2D InTopK InTopKV2 L2Loss LRN LeakyRelu LogSoftmax MaxPool
MaxPool3D MaxPoolV2 MaxPoolWithArgmax NthElement Relu Relu6 Selu Softmax Softplus Softsign TopK
TopKV2 ResizeArea ResizeBicubic ResizeBilinear ResizeNearestNeighbor CropAndResize
Einsum MatrixDeterminant MatrixInverse MatrixSolve MatrixTriangularSolve Cholesky Qr Svd
"""

#: Ops the app may evaluate ahead of time: pure functions of their inputs.
PURE_OPS: frozenset[str] = frozenset((_MATH + _ARRAY + _NN).split())



def pure_op_refusal(op: str) -> str | None:
    """Why ``op`` is not on the pure-op allowlist (None when it is)."""
    if op in PURE_OPS:
        return None
    return (f"{op} is not on the list of pure ops the app evaluates on its own (it may read or "
            "write files, keep state or be random)")
