//! wasmserve patch: active element segments of functions applied by the host
//! at instantiation, with a loop over a per-module plan, instead of by the
//! module's compiled startup function (a few instructions per element, in
//! line).
//!
//! componentize-py links libpython as a shared library whose one active
//! segment fills ~5,000 entries of the imported `__indirect_function_table`
//! at `__table_base`. Compiled in line, that is ~400 KiB of machine code run
//! once per instantiation and missing the instruction cache all the way:
//! 12 % of a Python connection's CPU. Here each element is a 32-byte record
//! of a plan made once per module: the `VMFuncRef` to write (code pointers
//! from the text offsets, the engine type index, this instance's context)
//! and the table entry that points at it.
//!
//! Which modules: `wasmtime-internal-cranelift`'s
//! `host_applies_function_segments`, which the patched translation asks to
//! leave their segments out of the startup function, and `compile.rs` asks
//! to write them into the artifact's [`FUNCTION_SEGMENTS_SECTION`], read
//! back here (the runtime's `Module` keeps no segments).

use alloc::boxed::Box;
use alloc::vec::Vec;
use wasmtime_environ::{
    ConstOp, FuncIndex, GlobalIndex, HostPtr, IndexType, Module, StaticModuleIndex, TableIndex,
    TableSegment, TableSegmentElements, VMOffsets, packed_option::ReservedValue,
};

use crate::runtime::vm::VMSharedTypeIndex;

/// The artifact section holding the segments the host applies: a
/// `postcard` list of `(module index, segments)`.
pub const FUNCTION_SEGMENTS_SECTION: &str = ".wasmserve.segments";

/// The section's contents for `modules`' segments.
pub(crate) fn encode(modules: &[(u32, Vec<TableSegment>)]) -> Vec<u8> {
    postcard::to_allocvec(modules).expect("segments serialize")
}

/// The segments of `module` in a section's `data`: `Ok(None)` if the
/// section has none for it (its startup function applies them), an error
/// if the section cannot be read (the startup function then applies
/// nothing: instantiating fails rather than leave the table empty).
fn decode(data: &[u8], module: StaticModuleIndex) -> Result<Option<Vec<TableSegment>>, PlanError> {
    if data.is_empty() {
        return Ok(None);
    }
    let modules: Vec<(u32, Vec<TableSegment>)> =
        postcard::from_bytes(data).map_err(|_| PlanError("its section cannot be read"))?;
    Ok(modules
        .into_iter()
        .find(|(index, _)| *index == module.as_u32())
        .map(|(_, segments)| segments))
}

/// Why a module's segments cannot be applied: its artifact is not what this
/// patch's compilation writes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlanError(pub(crate) &'static str);

/// Where a planned segment starts in its table.
pub(crate) enum SegmentOffset {
    /// A constant.
    Const(u64),
    /// The value of an imported global, of the table's index type.
    Global(GlobalIndex, IndexType),
}

/// One element of a planned segment.
#[derive(Clone, Copy)]
pub(crate) struct PlannedFuncRef {
    /// Where in the instance's `VMContext` the element's `VMFuncRef` is (a
    /// defined function's, or an imported function's `VMFunctionImport`,
    /// which has the same layout); [`PlannedFuncRef::NULL`] for a null
    /// element.
    pub(crate) vmctx_offset: u32,
    /// The engine-wide type of a defined function.
    pub(crate) type_index: VMSharedTypeIndex,
    /// The text offsets of a defined function's array-call trampoline and
    /// body; `None` for an imported function (its record is filled when
    /// the instance is made).
    pub(crate) code: Option<(usize, usize)>,
}

impl PlannedFuncRef {
    /// The `vmctx_offset` of a null element.
    pub(crate) const NULL: u32 = u32::MAX;
}

/// One active segment, planned.
pub(crate) struct PlannedSegment {
    /// The table it fills.
    pub(crate) table: TableIndex,
    /// Where it starts.
    pub(crate) offset: SegmentOffset,
    /// Its elements, in order.
    pub(crate) elements: Box<[PlannedFuncRef]>,
}

/// A module's active segments, as the host applies them.
pub(crate) struct FunctionSegments {
    /// In the module's order.
    pub(crate) segments: Box<[PlannedSegment]>,
}

impl FunctionSegments {
    /// The plan of `module`'s segments as the section `data` holds them, or
    /// `None` if its startup function applies them. `code` gives a defined
    /// function's text offsets (array trampoline, body).
    pub(crate) fn plan(
        data: &[u8],
        module: &Module,
        offsets: &VMOffsets<HostPtr>,
        mut code: impl FnMut(FuncIndex) -> (usize, usize),
    ) -> Result<Option<Self>, PlanError> {
        let Some(planned) = decode(data, module.module_index)? else {
            return Ok(None);
        };
        let mut segments = Vec::new();
        for segment in planned {
            let TableSegmentElements::Functions(functions) = &segment.elements else {
                return Err(PlanError("a segment is not a list of functions"));
            };
            let index_type = module.tables[segment.table_index].idx_type;
            let offset = match segment.offset.ops() {
                [ConstOp::I32Const(value)] => SegmentOffset::Const(u64::from(value.cast_unsigned())),
                [ConstOp::I64Const(value)] => SegmentOffset::Const(value.cast_unsigned()),
                [ConstOp::GlobalGet(global)] if module.is_imported_global(*global) => {
                    SegmentOffset::Global(*global, index_type)
                }
                _ => return Err(PlanError("a segment's offset is not a constant or an imported global")),
            };
            let elements = functions
                .iter()
                .map(|&index| plan_element(module, offsets, index, &mut code))
                .collect();
            segments.push(PlannedSegment {
                table: segment.table_index,
                offset,
                elements,
            });
        }
        Ok(Some(Self {
            segments: segments.into_boxed_slice(),
        }))
    }
}

fn plan_element(
    module: &Module,
    offsets: &VMOffsets<HostPtr>,
    index: FuncIndex,
    code: &mut impl FnMut(FuncIndex) -> (usize, usize),
) -> PlannedFuncRef {
    if index == FuncIndex::reserved_value() {
        return PlannedFuncRef {
            vmctx_offset: PlannedFuncRef::NULL,
            type_index: VMSharedTypeIndex::default(),
            code: None,
        };
    }
    if module.is_imported_function(index) {
        return PlannedFuncRef {
            vmctx_offset: offsets.vmctx_vmfunction_import(index),
            type_index: VMSharedTypeIndex::default(),
            code: None,
        };
    }
    let func = &module.functions[index];
    PlannedFuncRef {
        vmctx_offset: offsets.vmctx_func_ref(func.func_ref),
        type_index: func.signature.unwrap_engine_type_index(),
        code: Some(code(index)),
    }
}
