//! `blockstm bench` on the EVM workloads: small blocks run and report their gas and alloy-evm's
//! time beside; an unknown EVM workload and a block below one transaction's gas are clear
//! errors.

use std::process::Command;

fn blockstm(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_blockstm")).args(args).output().expect("run blockstm");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn evm_workloads_run_and_report_gas() {
    let json = std::env::temp_dir().join(format!("blockstm-bench-evm-{}.json", std::process::id()));
    let json_arg = json.to_str().unwrap();
    let (ok, stdout, stderr) = blockstm(&[
        "bench",
        "-w",
        "eth-native,eth-erc20,eth-amm",
        "--gas",
        "3000000",
        "-t",
        "2",
        "-r",
        "1",
        "--json",
        json_arg,
    ]);
    assert!(ok, "{stderr}");
    for name in ["eth-native", "eth-erc20", "eth-amm"] {
        assert!(stdout.contains(name), "{name} missing from:\n{stdout}");
    }
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let rows = report["results"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for row in rows {
        let gas = row["gas"].as_u64().unwrap();
        assert!((2_700_000..=3_300_000).contains(&gas), "{row}");
        assert!(row["speedup"].as_f64().unwrap() > 0.0, "{row}");
        // alloy-evm's block executor ran the same block (same gas, or the run fails) beside.
        assert!(row["alloy_ms"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["speedup_vs_alloy"].as_f64().unwrap() > 0.0, "{row}");
    }
    let _ = std::fs::remove_file(json);
}

#[test]
fn unknown_evm_workloads_and_tiny_blocks_are_errors() {
    let (ok, _, stderr) = blockstm(&["bench", "-w", "eth-nft"]);
    assert!(!ok && stderr.contains("eth-nft") && stderr.contains("eth-erc20"), "{stderr}");
    let (ok, _, stderr) = blockstm(&["bench", "-w", "eth-native", "--gas", "100"]);
    assert!(!ok && stderr.contains("--gas"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
