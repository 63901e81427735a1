//! Misconfiguration is a compile error with a readable message: each case under `tests/ui/`
//! must fail to compile with the committed `.stderr`.

#[test]
fn misuse_does_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("ui/*.rs");
}
