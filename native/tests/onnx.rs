//! The ONNX reader on real exports and on every truncation of one: an error, never a panic.

use wna::onnx::{convert, proto};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/onnx");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).expect("fixture (bench/export_fixtures.py)")
}

#[test]
fn reads_a_pytorch_export() {
    let model = proto::parse_model(&read("tiny_resnet.onnx")).unwrap();
    assert_eq!(model.producer, "pytorch");
    assert!(model.opset >= 9);
    let ops: Vec<&str> = model
        .graph
        .nodes
        .iter()
        .map(|n| n.op_type.as_str())
        .collect();
    assert!(ops.contains(&"Conv") && ops.contains(&"Add") && ops.contains(&"Gemm"));
    let input = &model.graph.inputs[0];
    assert_eq!(input.shape, Some(vec![None, Some(1), Some(28), Some(28)]));
    let fc = model
        .graph
        .initializers
        .iter()
        .find(|t| t.name == "fc.weight")
        .unwrap();
    assert_eq!(fc.shape(), vec![10, 1568]);
    assert_eq!(fc.to_f32().unwrap().len(), 15_680);
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let bytes = read("unsupported.onnx");
    let mut errors = 0;
    for end in (0..bytes.len()).step_by(7) {
        let parsed = proto::parse_model(&bytes[..end]);
        if let Ok(model) = parsed {
            // A cut that lands between fields parses; the graph it leaves must not convert.
            assert!(
                convert::convert(&model, "cut").is_err(),
                "cut at {end} converted"
            );
        } else {
            errors += 1;
        }
    }
    assert!(
        errors > bytes.len() / 14,
        "only {errors} truncations were refused"
    );
}

#[test]
fn converts_residual_blocks_and_names_layers_after_modules() {
    let model = proto::parse_model(&read("tiny_resnet_raw.onnx")).unwrap();
    let c = convert::convert(&model, "raw").unwrap();
    let names: Vec<String> = c
        .spec
        .layers
        .iter()
        .filter_map(|l| l.tap().map(String::from))
        .collect();
    assert_eq!(names, ["model.conv1", "model.layer1.0", "model.layer1.1"]);
    // (x - 0.1307) / 0.3081 in the graph.
    assert!((c.shift - 0.1307).abs() < 1e-7 && (c.scale - 0.3081).abs() < 1e-7);
    assert_eq!(c.notes.len(), 1);
    let projection = c
        .weights
        .iter()
        .find(|w| w.name == "model.layer1.0.proj.weight")
        .unwrap();
    assert_eq!(projection.shape, [32, 16, 1, 1]);
}
