//===- KilnBase.td - kiln dialect definition and base op class ----------===//
//
// The kiln dialect: the tensor-level IR Kiln models are written in. This file
// holds the dialect record, the element-type and tensor-type constraints shared
// by every op, and `Kiln_Op`, the base class that gives every op the traits the
// dialect relies on (no side effects, result-type inference).
//
//===----------------------------------------------------------------------===//

#ifndef KILN_IR_KILNBASE_TD
#define KILN_IR_KILNBASE_TD

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def Kiln_Dialect : Dialect {
  let name = "kiln";
  let cppNamespace = "::kiln";
  let summary = "Tensor-level operations of the Kiln neural-network compiler";
  let description = [{
    The `kiln` dialect describes neural-network graphs as `func.func` bodies
    over builtin ranked tensors with fully static shapes (rank 0 allowed).
    Element types are f32, f16, bf16, f64, i64, i32, i8, ui8 and i1; signless
    integers are signed.

    Every op is free of side effects and infers its result type from its
    operands and attributes, so a graph builder can ask an op for its result
    type (and get a diagnostic when shapes do not fit) before creating it.
    All inherent attributes are plain builtin attributes (no properties), so
    codegen can convert them to JSON generically.

    Example:

    ```mlir
    func.func @mlp(%x: tensor<2x8xf32> {kiln.name = "x"},
                   %w: tensor<16x8xf32> {kiln.param = "fc.weight"})
        -> (tensor<2x16xf32> {kiln.name = "y"}) {
      %h = kiln.matmul %x, %w {transpose_b = true}
          : (tensor<2x8xf32>, tensor<16x8xf32>) -> tensor<2x16xf32>
      %y = kiln.relu %h : tensor<2x16xf32>
      return %y : tensor<2x16xf32>
    }
    ```
  }];
  let usePropertiesForAttributes = 0;
  let hasConstantMaterializer = 1;
}

//===----------------------------------------------------------------------===//
// Element types and tensors
//===----------------------------------------------------------------------===//

// "float" = f32|f16|bf16|f64; "signed" = float|i64|i32|i8;
// "numeric" = all but i1 (CONTRACT.md).
defvar Kiln_FloatTypes = [F32, F16, BF16, F64];
defvar Kiln_SignedTypes = [F32, F16, BF16, F64, I64, I32, I8];
defvar Kiln_NumericTypes = [F32, F16, BF16, F64, I64, I32, I8, UI8];
defvar Kiln_AnyElementTypes = [F32, F16, BF16, F64, I64, I32, I8, UI8, I1];

class Kiln_TensorOf<list<Type> types>
    : RankedTensorOf<types, [HasStaticShapePred], "statically shaped tensor">;

def Kiln_FloatTensor : Kiln_TensorOf<Kiln_FloatTypes>;
def Kiln_SignedTensor : Kiln_TensorOf<Kiln_SignedTypes>;
def Kiln_NumericTensor : Kiln_TensorOf<Kiln_NumericTypes>;
def Kiln_AnyTensor : Kiln_TensorOf<Kiln_AnyElementTypes>;
def Kiln_BoolTensor : Kiln_TensorOf<[I1]>;
def Kiln_IndexTensor : Kiln_TensorOf<[I32, I64]>;

def Kiln_ElementType : TypeAttrOf<AnyTypeOf<Kiln_AnyElementTypes>>;

//===----------------------------------------------------------------------===//
// Base op class
//===----------------------------------------------------------------------===//

// Like upstream `InferTypeOpAdaptor`, but the generic `inferReturnTypes` is safe
// to call before an op exists, with any attribute dictionary (even null): it
// fills in default-valued attributes and checks the attributes' presence and
// types (the adaptor's verifier) before the op's own
// `inferReturnTypes(context, location, Adaptor, types)` reads them. Without a
// location, the attribute diagnostics are swallowed as for shape errors.
def Kiln_InferTypeOpAdaptor : TraitList<[
  DeclareOpInterfaceMethods<InferTypeOpInterface>,
  NativeOpTrait<"InferTypeOpAdaptor", [], [{
    static ::llvm::LogicalResult
    inferReturnTypes(::mlir::MLIRContext *context,
                     std::optional<::mlir::Location> location, Adaptor adaptor,
                     ::llvm::SmallVectorImpl<::mlir::Type> &inferredReturnTypes);
  }], [{
    ::llvm::LogicalResult $cppClass::inferReturnTypes(
        ::mlir::MLIRContext *context, std::optional<::mlir::Location> location,
        ::mlir::ValueRange operands, ::mlir::DictionaryAttr attributes,
        ::mlir::OpaqueProperties properties, ::mlir::RegionRange regions,
        ::llvm::SmallVectorImpl<::mlir::Type> &inferredReturnTypes) {
      context->getOrLoadDialect<::kiln::KilnDialect>();
      ::mlir::NamedAttrList attrs(attributes);
      ::mlir::OperationName(getOperationName(), context)
          .populateDefaultAttrs(attrs);
      $cppClass::Adaptor adaptor(operands, attrs.getDictionary(context),
                                 properties, regions);
      if (::mlir::failed(::kiln::detail::verifyAdaptor(context, location,
                                                       adaptor)))
        return ::mlir::failure();
      return $cppClass::inferReturnTypes(context, location, adaptor,
                                         inferredReturnTypes);
    }
  }]>
]>;

// Every kiln op is pure (so CSE and DCE apply) and infers its result type
// through `inferReturnTypes(..., Adaptor, ...)`, defined in KilnOps.cpp.
class Kiln_Op<string mnemonic, list<Trait> traits = []>
    : Op<Kiln_Dialect, mnemonic,
         !listconcat([Pure, Kiln_InferTypeOpAdaptor], traits)>;

#endif // KILN_IR_KILNBASE_TD
