//! The machine on hand-written pickles: what a state dict is made of is read; everything else,
//! and every malformed stream, is an error naming the byte, never a panic.
#![allow(clippy::unwrap_used)]

use super::state_dict;

/// A protocol-2 pickle of `{name: tensor}` whose tensor views storage "0" of `numel` f32s
/// with `view` (offset, size and stride opcodes) between the persistent id and requires_grad.
fn one_tensor(numel: u8, view: &[u8]) -> Vec<u8> {
    let mut p = b"\x80\x02ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00w".to_vec();
    p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage");
    p.extend(b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK");
    p.push(numel);
    p.extend(b"tQ");
    p.extend(view);
    p.extend(b"\x89ccollections\nOrderedDict\n)RtRu.");
    p
}

#[test]
fn a_state_dict_of_one_strided_tensor_is_read() {
    // offset 1, size (2, 3), stride (1, 2): the transposed view of a 3×2 block.
    let got = state_dict(&one_tensor(7, b"K\x01K\x02K\x03\x86K\x01K\x02\x86")).unwrap();
    assert_eq!(got.len(), 1);
    let (name, t) = &got[0];
    assert_eq!(name, "w");
    assert_eq!((t.storage.dtype, t.storage.numel), ("F32", 7));
    assert_eq!(
        (t.offset, t.shape.clone(), t.stride.clone()),
        (1, vec![2, 3], vec![1, 2])
    );
    assert!(!t.is_contiguous());
}

#[test]
fn a_view_past_its_storage_is_refused() {
    // offset 2 with the same view reaches element 7 of 7.
    let err = state_dict(&one_tensor(7, b"K\x02K\x02K\x03\x86K\x01K\x02\x86")).unwrap_err();
    assert!(
        err.contains("reaches past the 7 elements of storage 0"),
        "{err}"
    );
    // A stride that overflows.
    let view = b"K\x00K\x02K\x02\x86\x8a\x08\xff\xff\xff\xff\xff\xff\xff\x7fK\x01\x86";
    let err = state_dict(&one_tensor(7, view)).unwrap_err();
    assert!(err.contains("reaches past"), "{err}");
    // Sizes and strides of different lengths.
    let err = state_dict(&one_tensor(7, b"K\x00K\x02\x85K\x01K\x01\x86")).unwrap_err();
    assert!(err.contains("1 dimensions with 2 strides"), "{err}");
}

#[test]
fn any_other_callable_is_refused_by_name_and_never_called() {
    for (pickle, name) in [
        (
            &b"\x80\x02cos\nsystem\nX\x02\x00\x00\x00idtR."[..],
            "os.system",
        ),
        (
            b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93.",
            "builtins.eval",
        ),
        (b"\x80\x02ctorch\nload\n.", "torch.load"),
        (b"\x80\x02c__builtin__\ngetattr\n.", "__builtin__.getattr"),
    ] {
        let err = state_dict(pickle).unwrap_err();
        assert!(err.contains(name) && err.contains("never calls"), "{err}");
    }
    // An allowed name called in a way a state dict never is.
    let err = state_dict(b"\x80\x02ctorch\nFloatStorage\n)R.").unwrap_err();
    assert!(err.contains("called with 0 arguments"), "{err}");
}

#[test]
fn malformed_streams_are_errors_naming_the_byte() {
    for (pickle, fragment) in [
        (&b""[..], "ends early"),
        (b"\x80\x02", "ends early"),
        (b"\x80\x02X\xff\xff\xff\xffabc", "ends early"),
        (
            b"\x80\x02h\x05.",
            "memo entry 5 is read before it is written",
        ),
        (b"\x80\x020.", "stack"),
        (b"\x80\x02t.", "no MARK"),
        (b"\x80\x02}(K\x01u.", "not in pairs"),
        (b"\x80\x02K\x01K\x02s.", "stack is empty"),
        (b"\x80\x02]K\x01K\x02s.", "not a dict"),
        (
            b"\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00.",
            "9 bytes",
        ),
        (b"\x80\x02X\x02\x00\x00\x00\xff\xfe.", "not UTF-8"),
        (b"\x80\x02c\xff\nx\n.", "not UTF-8"),
        (b"\x80\x02cos\nsystem", "newline"),
        (b"\x80\x02I1\n.", "not an opcode"),
        (b"\x80\x02}.", "no tensors"),
        (b"\x80\x02K\x01.", "not hold a dict"),
        (
            b"\x80\x02(X\x07\x00\x00\x00storageK\x01tQ.",
            "persistent id of 2 parts",
        ),
    ] {
        let err = state_dict(pickle).unwrap_err();
        assert!(err.contains(fragment), "{pickle:?}: {err}");
    }
    let err = state_dict(b"\x80\x02K\x01K\x02s.").unwrap_err();
    assert!(err.starts_with("byte 6 (opcode 0x73)"), "{err}");
}

#[test]
fn a_memo_bomb_stays_the_size_of_the_pickle() {
    // Each line makes a tuple of the previous one twice: 2^4000 leaves if it were copied.
    let mut p = b"\x80\x02)r\x00\x00\x00\x00".to_vec();
    for i in 0..4000u32 {
        p.extend(b"j");
        p.extend(i.to_le_bytes());
        p.extend(b"j");
        p.extend(i.to_le_bytes());
        p.extend(b"\x86r");
        p.extend((i + 1).to_le_bytes());
    }
    p.extend(b".");
    let err = state_dict(&p).unwrap_err();
    assert!(err.contains("not hold a dict"), "{err}");
}

#[test]
fn a_dict_under_state_dict_is_read_and_later_names_replace_earlier() {
    let inner = one_tensor(6, b"K\x00K\x06\x85K\x01\x85");
    // {"state_dict": <inner dict>}: the inner pickle's body, without its PROTO and STOP.
    let body = &inner[2..inner.len() - 1];
    let mut p = b"\x80\x02}X\x0a\x00\x00\x00state_dict".to_vec();
    p.extend(body);
    p.extend(b"s.");
    let got = state_dict(&p).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1.shape, vec![6]);
}

#[test]
fn the_old_formats_head_is_checked_pickle_by_pickle() {
    use super::{legacy_head, LEGACY_MAGIC};
    let err = legacy_head(b"\x80\x02K\x01.").unwrap_err();
    assert!(err.contains("magic number"), "{err}");
    let with = |rest: &[u8]| [LEGACY_MAGIC, rest].concat();
    let err = legacy_head(&with(b"\x80\x02M\xe8\x03.")).unwrap_err();
    assert!(err.contains("protocol version other than 1001"), "{err}");
    let proto = b"\x80\x02M\xe9\x03.";
    let big = b"\x80\x02}X\x0d\x00\x00\x00little_endian\x89s.";
    let err = legacy_head(&with(&[&proto[..], big].concat())).unwrap_err();
    assert!(err.contains("big-endian"), "{err}");
    // A persistent id of six parts whose last is not None: a storage view.
    let mut view = one_tensor(6, b"K\x00K\x06\x85K\x01\x85");
    let at = view.windows(3).position(|w| w == b"K\x06t").unwrap() + 2;
    view.splice(at..at, b"K\x00".iter().copied());
    let err = state_dict(&view).unwrap_err();
    assert!(err.contains("storage view"), "{err}");
    // The same with None is the old format's persistent id, read.
    let mut none = one_tensor(6, b"K\x00K\x06\x85K\x01\x85");
    none.splice(at..at, b"N".iter().copied());
    assert_eq!(state_dict(&none).unwrap()[0].1.shape, vec![6]);
}
