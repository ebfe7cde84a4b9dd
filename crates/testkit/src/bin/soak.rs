//! Long-running differential runner: generates seeded random blocks until stopped (or for a
//! given time), runs each sequentially and in parallel at a random thread count and livelock
//! setting, and stops at the first divergence with the seed that replays it.
//!
//! ```text
//! soak [--minutes M] [--seed S]            # run; prints progress every 10 s
//! soak --replay SEED [--threads T] [--max-incarnations M] [--adaptive BOOL] [--batch B]   # re-check one block
//! ```

use blockstm_testkit::{
    BATCHES, Rng, batched, block_stm_config, check_case, quiet_test_vm_panics, random_case,
};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const THREADS: [usize; 8] = [1, 2, 3, 4, 8, 16, 24, 32];

fn arg<T: std::str::FromStr>(args: &[String], name: &str) -> Result<Option<T>, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(None),
        Some(i) => {
            let value = args.get(i + 1).ok_or_else(|| format!("{name} needs a value"))?;
            value.parse().map(Some).map_err(|_| format!("{name}: cannot parse {value:?}"))
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<ExitCode, String> {
    quiet_test_vm_panics();
    let watchdog = Some(Duration::from_secs(60));
    if let Some(seed) = arg::<u64>(args, "--replay")? {
        let threads = arg::<usize>(args, "--threads")?.map_or(THREADS.to_vec(), |t| vec![t]);
        let max_incarnations = arg::<u32>(args, "--max-incarnations")?.unwrap_or(256);
        let adaptive = arg::<bool>(args, "--adaptive")?.unwrap_or(false);
        let batch = arg::<usize>(args, "--batch")?.unwrap_or(1);
        let configs: Vec<_> = threads
            .iter()
            .map(|&t| batched(block_stm_config(t, max_incarnations, watchdog).with_adaptive(adaptive), batch))
            .collect();
        return Ok(match check_case(&random_case(seed), &configs) {
            Ok(()) => {
                println!("seed {seed}: identical at threads {threads:?}");
                ExitCode::SUCCESS
            }
            Err(d) => {
                println!("{d}");
                ExitCode::FAILURE
            }
        });
    }
    let minutes = arg::<f64>(args, "--minutes")?;
    let base = arg::<u64>(args, "--seed")?.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    let start = Instant::now();
    let stop = minutes.map(|m| start + Duration::from_secs_f64(m * 60.0));
    let mut pick = Rng::new(base ^ 0xA5A5_A5A5);
    let (mut blocks, mut last_report) = (0u64, Instant::now());
    println!(
        "soak: base seed {base}, {}",
        minutes.map_or("until stopped".into(), |m| format!("{m} minutes"))
    );
    loop {
        let seed = base.wrapping_add(blocks);
        let threads = THREADS[pick.below(THREADS.len() as u64) as usize];
        let max_incarnations = if pick.chance(0.2) { pick.range(1, 3) as u32 } else { 256 };
        let adaptive = pick.chance(0.2);
        let batch = BATCHES[pick.below(BATCHES.len() as u64) as usize];
        let config =
            batched(block_stm_config(threads, max_incarnations, watchdog).with_adaptive(adaptive), batch);
        if let Err(d) = check_case(&random_case(seed), &[config]) {
            println!("{d}");
            println!(
                "replay: soak --replay {seed} --threads {threads} --max-incarnations {max_incarnations} --adaptive {adaptive} --batch {batch}"
            );
            return Ok(ExitCode::FAILURE);
        }
        blocks += 1;
        if last_report.elapsed() >= Duration::from_secs(10) {
            println!("soak: {blocks} blocks checked, {:.0} s, no divergence", start.elapsed().as_secs_f64());
            last_report = Instant::now();
        }
        if stop.is_some_and(|s| Instant::now() >= s) {
            println!(
                "soak: done: {blocks} blocks checked in {:.0} s, no divergence",
                start.elapsed().as_secs_f64()
            );
            return Ok(ExitCode::SUCCESS);
        }
    }
}
