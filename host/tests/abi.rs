//! The direct canonical-ABI path (`value::abi`) against wasmtime's own `Val` path.
//!
//! A generated component imports `f: func(params) -> result` and exports `g` with the same
//! signature, whose core code hands its flat arguments (or the pointer to them) straight to
//! `f` and returns what `f` returns. The host serves `f` by echoing its arguments, either
//! through `abi::define_import` or through wasmtime's `func_new`, and calls `g` either
//! through `abi::call_export` or through `Func::call`. For random signatures and values,
//! every one of the four pairings must hand back the value it was given, and the arguments
//! `f` saw must have the record bytes and key digest of those given.

use std::sync::{Arc, Mutex};

use cachehost::store::record;
use cachehost::value::abi::{self, ParamsAbi, ResultAbi};
use cachehost::value::{canonical, Numbers, Ty, Value};
use proptest::prelude::*;
use wasmtime::component::{Component, Linker, Val};
use wasmtime::{Engine, Store};

// ---- the generated component ----

/// The core types `ty` flattens to (the canonical ABI's `flatten_type`).
fn flat(ty: &Ty) -> Vec<&'static str> {
    fn join(a: &'static str, b: &'static str) -> &'static str {
        match (a, b) {
            _ if a == b => a,
            ("i32", "f32") | ("f32", "i32") => "i32",
            _ => "i64",
        }
    }
    fn variant<'a>(cases: impl Iterator<Item = Option<&'a Ty>>) -> Vec<&'static str> {
        let mut joined: Vec<&'static str> = Vec::new();
        for case in cases.flatten() {
            for (i, t) in flat(case).into_iter().enumerate() {
                match joined.get(i) {
                    Some(j) => joined[i] = join(j, t),
                    None => joined.push(t),
                }
            }
        }
        std::iter::once("i32").chain(joined).collect()
    }
    match ty {
        Ty::S64 | Ty::U64 => vec!["i64"],
        Ty::F32 => vec!["f32"],
        Ty::F64 => vec!["f64"],
        Ty::String | Ty::List(_) => vec!["i32", "i32"],
        Ty::Record(fields) => fields.iter().flat_map(|(_, t)| flat(t)).collect(),
        Ty::Tuple(types) => types.iter().flat_map(flat).collect(),
        Ty::Flags(names) => vec!["i32"; names.len().div_ceil(32)],
        Ty::Variant(cases) => variant(cases.iter().map(|(_, t)| t.as_ref())),
        Ty::Option(t) => variant([None, Some(&**t)].into_iter()),
        Ty::Result { ok, err } => variant([ok.as_deref(), err.as_deref()].into_iter()),
        _ => vec!["i32"],
    }
}

/// Component-level type syntax for `ty`; named types (records, variants, enums, flags)
/// are declared in `defs` and imported, as exported functions require.
fn wat_type(ty: &Ty, defs: &mut Vec<String>) -> String {
    let named = |body: String, defs: &mut Vec<String>| {
        let n = defs.len();
        defs.push(format!("(type $t{n}' {body}) (import \"t{n}\" (type $t{n} (eq $t{n}')))"));
        format!("$t{n}")
    };
    match ty {
        Ty::Bool => "bool".into(),
        Ty::S8 => "s8".into(),
        Ty::U8 => "u8".into(),
        Ty::S16 => "s16".into(),
        Ty::U16 => "u16".into(),
        Ty::S32 => "s32".into(),
        Ty::U32 => "u32".into(),
        Ty::S64 => "s64".into(),
        Ty::U64 => "u64".into(),
        Ty::F32 => "f32".into(),
        Ty::F64 => "f64".into(),
        Ty::Char => "char".into(),
        Ty::String => "string".into(),
        Ty::List(t) => format!("(list {})", wat_type(t, defs)),
        Ty::Tuple(types) => {
            format!("(tuple {})", types.iter().map(|t| wat_type(t, defs)).collect::<Vec<_>>().join(" "))
        }
        Ty::Option(t) => format!("(option {})", wat_type(t, defs)),
        Ty::Result { ok, err } => {
            let ok = ok.as_ref().map(|t| wat_type(t, defs)).unwrap_or_default();
            let err = err.as_ref().map(|t| format!("(error {})", wat_type(t, defs))).unwrap_or_default();
            format!("(result {ok} {err})")
        }
        Ty::Record(fields) => {
            let body: Vec<String> =
                fields.iter().map(|(n, t)| format!("(field \"{n}\" {})", wat_type(t, defs))).collect();
            named(format!("(record {})", body.join(" ")), defs)
        }
        Ty::Variant(cases) => {
            let body: Vec<String> = cases
                .iter()
                .map(|(n, t)| match t {
                    Some(t) => format!("(case \"{n}\" {})", wat_type(t, defs)),
                    None => format!("(case \"{n}\")"),
                })
                .collect();
            named(format!("(variant {})", body.join(" ")), defs)
        }
        Ty::Enum(names) => named(format!("(enum {})", quoted(names)), defs),
        Ty::Flags(names) => named(format!("(flags {})", quoted(names)), defs),
    }
}

fn quoted(names: &[String]) -> String {
    names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(" ")
}

/// The result type of `f` and `g`: the one parameter's type, or a tuple of all of them.
fn result_ty(params: &[Ty]) -> Ty {
    match params {
        [one] => one.clone(),
        many => Ty::Tuple(many.to_vec()),
    }
}

fn passthrough_wat(params: &[Ty]) -> String {
    let result = result_ty(params);
    let mut defs = Vec::new();
    let param_decls: Vec<String> =
        params.iter().enumerate().map(|(i, t)| format!("(param \"p{i}\" {})", wat_type(t, &mut defs))).collect();
    let result_decl = wat_type(&result, &mut defs);
    let sig = format!("{} (result {result_decl})", param_decls.join(" "));
    let mut core_params: Vec<&str> = params.iter().flat_map(flat).collect();
    if core_params.len() > 16 {
        core_params = vec!["i32"];
    }
    let result_flat = flat(&result);
    let in_memory = result_flat.len() > 1;
    let (import_sig, export_sig) = if in_memory {
        (format!("(param {} i32)", core_params.join(" ")), format!("(param {}) (result i32)", core_params.join(" ")))
    } else {
        let sig = format!("(param {}) (result {})", core_params.join(" "), result_flat[0]);
        (sig.clone(), sig)
    };
    let gets: String = (0..core_params.len()).map(|i| format!("local.get {i} ")).collect();
    let body = if in_memory { format!("{gets} i32.const 8 call $f i32.const 8") } else { format!("{gets} call $f") };
    format!(
        r#"(component
  {defs}
  (import "f" (func $f {sig}))
  (core module $libc
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 4096))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $ptr i32) (local $end i32)
      (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                               (i32.sub (i32.const 0) (local.get 2))))
      (local.set $end (i32.add (local.get $ptr) (local.get 3)))
      (if (i32.gt_u (local.get $end) (i32.mul (memory.size) (i32.const 65536)))
        (then (if (i32.eq (memory.grow (i32.add (i32.const 1) (i32.shr_u
                    (i32.sub (local.get $end) (i32.mul (memory.size) (i32.const 65536))) (i32.const 16))))
                  (i32.const -1))
          (then unreachable))))
      (global.set $heap (local.get $end))
      (local.get $ptr)))
  (core instance $libc (instantiate $libc))
  (core func $f_lowered (canon lower (func $f)
    (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (core module $main
    (import "libc" "memory" (memory 1))
    (import "host" "f" (func $f {import_sig}))
    (func (export "g") {export_sig} {body}))
  (core instance $main (instantiate $main
    (with "libc" (instance $libc))
    (with "host" (instance (export "f" (func $f_lowered))))))
  (func $g {sig} (canon lift (core func $main "g")
    (memory (core memory $libc "memory")) (realloc (core func $libc "realloc"))))
  (export "g" (func $g))
)"#,
        defs = defs.join("\n  ")
    )
}

// ---- running it every way ----

#[derive(Clone, Copy, Debug)]
enum Path {
    Direct,
    Val,
}

struct Run {
    /// What `f` returned through `g`.
    returned: Value,
    /// The arguments `f` was handed.
    seen: Vec<Value>,
    /// Whether any list among them was borrowed from the guest's memory.
    borrowed: bool,
}

/// Whether a byte list or list of numbers in `value` is borrowed from guest memory.
fn borrows(value: &Value) -> bool {
    match value {
        Value::Bytes(bytes) => bytes.is_borrowed(),
        Value::Numbers(numbers) => numbers.is_borrowed(),
        Value::List(items) | Value::Record(items) | Value::Tuple(items) => items.iter().any(borrows),
        Value::Variant(_, Some(p)) | Value::Option(Some(p)) | Value::Result(Ok(Some(p)) | Err(Some(p))) => borrows(p),
        _ => false,
    }
}

fn run(engine: &Engine, component: &Component, params: &[Ty], args: &[Value], import: Path, export: Path) -> Run {
    let result = result_ty(params);
    let seen: Arc<Mutex<Vec<Value>>> = Arc::default();
    let borrowed: Arc<Mutex<bool>> = Arc::default();
    let mut linker: Linker<()> = Linker::new(engine);
    let mut root = linker.root();
    let tuple = params.len() > 1;
    match import {
        Path::Direct => {
            let seen = seen.clone();
            let borrowed = borrowed.clone();
            let (p, r) = abi::signature_abi(&named(params), Some(&result));
            abi::define_import(&mut root, "f", p, r, move |_, args: Vec<Value>| {
                *borrowed.lock().unwrap() = args.iter().any(borrows);
                // Clones own their items: a result must not borrow the caller's memory.
                let args = args.clone();
                *seen.lock().unwrap() = args.clone();
                Ok(Some(if tuple { Value::Tuple(args) } else { args.into_iter().next().unwrap() }))
            })
            .unwrap();
        }
        Path::Val => {
            let seen = seen.clone();
            let params = params.to_vec();
            let result = result.clone();
            root.func_new("f", move |_, _, vals, results| {
                let args: Vec<Value> = vals.iter().zip(&params).map(|(v, t)| Value::from_val(v, t).unwrap()).collect();
                *seen.lock().unwrap() = args.clone();
                let back = if tuple { Value::Tuple(args) } else { args.into_iter().next().unwrap() };
                results[0] = back.to_val(&result).unwrap();
                Ok(())
            })
            .unwrap();
        }
    }
    let mut store = Store::new(engine, ());
    // Both paths charge 32 bytes of hostcall fuel per list item; the host sets the budget
    // from its limits (run/sandbox), here it is unbounded.
    store.set_hostcall_fuel(usize::MAX);
    let instance = linker.instantiate(&mut store, component).unwrap();
    let func = instance.get_func(&mut store, "g").unwrap();
    let returned = match export {
        Path::Direct => {
            let (p, r) = abi::signature_abi(&named(params), Some(&result));
            abi::call_export(&mut store, &func, p, r, args).unwrap().unwrap()
        }
        Path::Val => {
            let vals: Vec<Val> = args.iter().zip(params).map(|(v, t)| v.to_val(t).unwrap()).collect();
            let mut results = [Val::Bool(false)];
            func.call(&mut store, &vals, &mut results).unwrap();
            Value::from_val(&results[0], &result).unwrap()
        }
    };
    let seen = seen.lock().unwrap().clone();
    let borrowed = *borrowed.lock().unwrap();
    Run { returned, seen, borrowed }
}

fn named(params: &[Ty]) -> Vec<(String, Ty)> {
    params.iter().enumerate().map(|(i, t)| (format!("p{i}"), t.clone())).collect()
}

/// Record bytes and key digest of a value: what the cache keeps of it.
fn kept(value: &Value, ty: &Ty) -> (Vec<u8>, String) {
    (record::encode_value(value), canonical::digest(value, ty).unwrap().to_hex().to_string())
}

fn check_all_paths(params: &[Ty], args: &[Value]) {
    let engine = Engine::default();
    let wat = passthrough_wat(params);
    let component = Component::new(&engine, &wat).unwrap_or_else(|e| panic!("{e:#}\n{wat}"));
    let result = result_ty(params);
    let expected_back = if params.len() > 1 { Value::Tuple(args.to_vec()) } else { args[0].clone() };
    for import in [Path::Direct, Path::Val] {
        for export in [Path::Direct, Path::Val] {
            let run = run(&engine, &component, params, args, import, export);
            assert_eq!(run.seen.len(), args.len());
            for ((seen, given), ty) in run.seen.iter().zip(args).zip(params) {
                assert_eq!(kept(seen, ty), kept(given, ty), "import {import:?}, export {export:?}: argument");
            }
            assert_eq!(
                kept(&run.returned, &result),
                kept(&expected_back, &result),
                "import {import:?}, export {export:?}: result"
            );
        }
    }
}

// ---- random signatures and values ----

fn names(prefix: &'static str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn scalar_ty() -> impl Strategy<Value = Ty> {
    prop_oneof![
        Just(Ty::Bool),
        Just(Ty::S8),
        Just(Ty::U8),
        Just(Ty::S16),
        Just(Ty::U16),
        Just(Ty::S32),
        Just(Ty::U32),
        Just(Ty::S64),
        Just(Ty::U64),
        Just(Ty::F32),
        Just(Ty::F64),
        Just(Ty::Char),
        Just(Ty::String),
        (1..=32usize).prop_map(|n| Ty::Flags(names("f", n))),
        (1..300usize).prop_map(|n| Ty::Enum(names("e", n))),
    ]
}

fn any_ty() -> impl Strategy<Value = Ty> {
    scalar_ty().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| Ty::List(Box::new(t))),
            Just(Ty::List(Box::new(Ty::U8))),
            prop::collection::vec(inner.clone(), 1..20)
                .prop_map(|ts| Ty::Record(ts.into_iter().enumerate().map(|(i, t)| (format!("r{i}"), t)).collect())),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Ty::Tuple),
            prop::collection::vec(prop::option::of(inner.clone()), 1..5)
                .prop_map(|cs| Ty::Variant(cs.into_iter().enumerate().map(|(i, t)| (format!("c{i}"), t)).collect())),
            inner.clone().prop_map(|t| Ty::Option(Box::new(t))),
            (prop::option::of(inner.clone()), prop::option::of(inner))
                .prop_map(|(ok, err)| Ty::Result { ok: ok.map(Box::new), err: err.map(Box::new) }),
        ]
    })
}

fn value_of(ty: &Ty) -> BoxedStrategy<Value> {
    match ty {
        Ty::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Ty::S8 => any::<i8>().prop_map(Value::S8).boxed(),
        Ty::U8 => any::<u8>().prop_map(Value::U8).boxed(),
        Ty::S16 => any::<i16>().prop_map(Value::S16).boxed(),
        Ty::U16 => any::<u16>().prop_map(Value::U16).boxed(),
        Ty::S32 => any::<i32>().prop_map(Value::S32).boxed(),
        Ty::U32 => any::<u32>().prop_map(Value::U32).boxed(),
        Ty::S64 => any::<i64>().prop_map(Value::S64).boxed(),
        Ty::U64 => any::<u64>().prop_map(Value::U64).boxed(),
        Ty::F32 => any::<u32>().prop_map(|b| Value::F32(f32::from_bits(b))).boxed(),
        Ty::F64 => any::<u64>().prop_map(|b| Value::F64(f64::from_bits(b))).boxed(),
        Ty::Char => any::<char>().prop_map(Value::Char).boxed(),
        Ty::String => any::<String>().prop_map(Value::String).boxed(),
        Ty::List(item) if **item == Ty::U8 => {
            prop::collection::vec(any::<u8>(), 0..300).prop_map(|bytes| Value::Bytes(bytes.into())).boxed()
        }
        // A list of numbers comes in both forms, which must cross and encode alike.
        Ty::List(item) => {
            let item_ty = (**item).clone();
            (prop::collection::vec(value_of(item), 0..5), any::<bool>())
                .prop_map(
                    move |(items, held)| if held { Numbers::list_of(&item_ty, items) } else { Value::List(items) },
                )
                .boxed()
        }
        Ty::Record(fields) => {
            fields.iter().map(|(_, t)| value_of(t)).collect::<Vec<_>>().prop_map(Value::Record).boxed()
        }
        Ty::Tuple(types) => types.iter().map(value_of).collect::<Vec<_>>().prop_map(Value::Tuple).boxed(),
        Ty::Variant(cases) => {
            let cases = cases.clone();
            (0..cases.len() as u32)
                .prop_flat_map(move |i| {
                    let payload = match &cases[i as usize].1 {
                        Some(t) => value_of(t).prop_map(|v| Some(Box::new(v))).boxed(),
                        None => Just(None).boxed(),
                    };
                    payload.prop_map(move |p| Value::Variant(i, p))
                })
                .boxed()
        }
        Ty::Enum(names) => (0..names.len() as u32).prop_map(Value::Enum).boxed(),
        Ty::Option(t) => prop::option::of(value_of(t)).prop_map(|v| Value::Option(v.map(Box::new))).boxed(),
        Ty::Result { ok, err } => {
            let side = |t: &Option<Box<Ty>>| match t {
                Some(t) => value_of(t).prop_map(|v| Some(Box::new(v))).boxed(),
                None => Just(None).boxed(),
            };
            prop_oneof![side(ok).prop_map(|v| Value::Result(Ok(v))), side(err).prop_map(|v| Value::Result(Err(v)))]
                .boxed()
        }
        Ty::Flags(names) => {
            let n = names.len() as u32;
            prop::collection::btree_set(0..n, 0..n as usize + 1)
                .prop_map(|s| Value::Flags(s.into_iter().collect()))
                .boxed()
        }
    }
}

fn signature_and_args() -> impl Strategy<Value = (Vec<Ty>, Vec<Value>)> {
    prop::collection::vec(any_ty(), 1..4).prop_flat_map(|params| {
        let args: Vec<BoxedStrategy<Value>> = params.iter().map(value_of).collect();
        (Just(params), args)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn direct_path_keeps_what_the_val_path_keeps((params, args) in signature_and_args()) {
        check_all_paths(&params, &args);
    }

    /// The record encoding written by hand (`value::wire`) is serde's postcard encoding of
    /// `Value`, byte for byte, and reads back to a value of the same bytes.
    #[test]
    fn wire_bytes_are_serde_postcard_bytes((ty, value) in any_ty().prop_flat_map(|ty| (Just(ty.clone()), value_of(&ty)))) {
        let bytes = record::encode_value(&value);
        prop_assert_eq!(&bytes, &postcard::to_allocvec(&value).unwrap());
        prop_assert_eq!(record::value_len(&value), bytes.len() as u64);
        prop_assert_eq!(record::value_digest(&value), blake3::hash(&bytes));
        let back = record::decode_value_bytes(&bytes, &ty).unwrap();
        prop_assert_eq!(record::encode_value(&back), bytes);
    }
}

// ---- the shapes the issue names, at sizes the Val path is slow at ----

#[test]
fn every_abi_case_is_reached() {
    // A flat result, a result through memory, flat and spilled parameters, no result.
    let u32s = |n: usize| Ty::Record((0..n).map(|i| (format!("r{i}"), Ty::U32)).collect());
    assert_eq!(abi::signature_abi(&named(&[Ty::U32]), Some(&Ty::U32)), (ParamsAbi::Flat(1), ResultAbi::Flat));
    assert_eq!(abi::signature_abi(&named(&[u32s(17)]), Some(&Ty::String)), (ParamsAbi::Spilled, ResultAbi::Memory));
    assert_eq!(abi::signature_abi(&named(&[u32s(16)]), None), (ParamsAbi::Flat(16), ResultAbi::None));
    check_all_paths(&[u32s(17)], &[Value::Record((0..17).map(Value::U32).collect())]);
    check_all_paths(&[u32s(16)], &[Value::Record((0..16).map(Value::U32).collect())]);
}

/// Regression (issue 13): a list of numbers lifted item by item costs a 32-byte `Value`
/// per item; both paths must hand over one typed buffer, and give it back bit-exactly.
#[test]
fn lists_of_numbers_arrive_as_one_typed_buffer_on_every_path() {
    let engine = Engine::default();
    let ty = Ty::Record(vec![("xs".into(), Ty::List(Box::new(Ty::F32))), ("ys".into(), Ty::List(Box::new(Ty::U64)))]);
    let given = Value::Record(vec![
        Value::Numbers(Numbers::F32(vec![f32::from_bits(0x7fc0_0001), -0.0, 1.5].into())),
        Value::Numbers(Numbers::U64(vec![u64::MAX, 0].into())),
    ]);
    let component = Component::new(&engine, passthrough_wat(std::slice::from_ref(&ty))).unwrap();
    for import in [Path::Direct, Path::Val] {
        for export in [Path::Direct, Path::Val] {
            let run = run(&engine, &component, std::slice::from_ref(&ty), std::slice::from_ref(&given), import, export);
            for value in [&run.seen[0], &run.returned] {
                let Value::Record(fields) = value else { panic!("not a record: {value:?}") };
                assert!(fields.iter().all(|f| matches!(f, Value::Numbers(_))), "{import:?}/{export:?}: {fields:?}");
                assert_eq!(kept(value, &ty), kept(&given, &ty), "{import:?}/{export:?}");
            }
            let Value::Record(fields) = &run.returned else { unreachable!() };
            let Value::Numbers(Numbers::F32(xs)) = &fields[0] else { unreachable!() };
            assert_eq!(xs[0].to_bits(), 0x7fc0_0001, "a NaN payload comes back as it went");
        }
    }
}

#[test]
fn large_scalar_lists_and_nested_bytes_cross_intact() {
    let n = 1 << 16;
    let lists = [
        (Ty::List(Box::new(Ty::U32)), Value::Numbers(Numbers::U32((0..n).map(|i| i * 7).collect()))),
        (Ty::List(Box::new(Ty::S64)), Value::Numbers(Numbers::S64((0..n).map(|i| -(i as i64) * 3).collect()))),
        (Ty::List(Box::new(Ty::F64)), Value::Numbers(Numbers::F64((0..n).map(|i| i as f64 / 3.0).collect()))),
        (Ty::List(Box::new(Ty::S16)), Value::List((0..n).map(|i| Value::S16(i as i16)).collect())),
        (Ty::String, Value::String("ж".repeat(n as usize))),
    ];
    for (ty, value) in lists {
        check_all_paths(&[ty], &[value]);
    }
    // Bytes inside a record inside a list, every pairing.
    let record = Ty::Record(vec![("name".into(), Ty::String), ("data".into(), Ty::List(Box::new(Ty::U8)))]);
    let ty = Ty::List(Box::new(record));
    let item =
        |i: u8, len: usize| Value::Record(vec![Value::String(format!("item {i}")), Value::Bytes(vec![i; len].into())]);
    check_all_paths(&[ty], &[Value::List((0..3).map(|i| item(i, 1 << 20)).collect())]);
}

#[test]
fn sixteen_mib_inside_a_record_inside_a_list_comes_back_intact() {
    // The direct path both ways only: wasmtime's Val path needs 32 bytes per byte for this.
    let record = Ty::Record(vec![("name".into(), Ty::String), ("data".into(), Ty::List(Box::new(Ty::U8)))]);
    let params = [Ty::List(Box::new(record))];
    let data: Vec<u8> = (0..16u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let value = Value::List(vec![
        Value::Record(vec![Value::String("small".into()), Value::Bytes(vec![1, 2, 3].into())]),
        Value::Record(vec![Value::String("large".into()), Value::Bytes(data.into())]),
    ]);
    let engine = Engine::default();
    let component = Component::new(&engine, passthrough_wat(&params)).unwrap();
    let run = run(&engine, &component, &params, std::slice::from_ref(&value), Path::Direct, Path::Direct);
    assert!(record::encode_value(&run.seen[0]) == record::encode_value(&value), "the import saw another value");
    assert!(record::encode_value(&run.returned) == record::encode_value(&value), "another value came back");
}

/// Issue 13: a large list argument of an import is hashed and passed on from the caller's
/// memory, not copied out of it first; small ones are copied. Either way the import sees
/// the value the caller passed, with the same record bytes and key.
#[test]
fn large_import_arguments_are_borrowed_in_place_and_kept_alike() {
    let engine = Engine::default();
    let big = cachehost::value::buf::BORROW_FROM;
    let record = Ty::Record(vec![("name".into(), Ty::String), ("data".into(), Ty::List(Box::new(Ty::U8)))]);
    let cases = [
        (Ty::List(Box::new(Ty::U8)), Value::Bytes((0..big).map(|i| (i % 251) as u8).collect()), true),
        (Ty::List(Box::new(Ty::U8)), Value::Bytes(vec![3; big - 1].into()), false),
        (Ty::List(Box::new(Ty::F64)), Value::Numbers(Numbers::F64((0..big).map(|i| i as f64 - 0.5).collect())), true),
        (Ty::List(Box::new(Ty::U16)), Value::Numbers(Numbers::U16((0..big as u16 / 2).collect())), true),
        (Ty::List(Box::new(Ty::S32)), Value::Numbers(Numbers::S32(vec![-1; 8].into())), false),
        (
            Ty::List(Box::new(record)),
            Value::List(vec![Value::Record(vec![Value::String("x".into()), Value::Bytes(vec![9; 4 * big].into())])]),
            true,
        ),
    ];
    for (ty, value, large) in cases {
        let component = Component::new(&engine, passthrough_wat(std::slice::from_ref(&ty))).unwrap();
        let run = run(
            &engine,
            &component,
            std::slice::from_ref(&ty),
            std::slice::from_ref(&value),
            Path::Direct,
            Path::Direct,
        );
        assert_eq!(run.borrowed, large, "{ty:?}");
        assert_eq!(kept(&run.seen[0], &ty), kept(&value, &ty), "{ty:?}");
        assert_eq!(kept(&run.returned, &ty), kept(&value, &ty), "{ty:?}");
    }
}
