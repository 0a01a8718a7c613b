//! First-publish bench: "no client" → first acknowledged produce (connect + metadata +
//! produce), then N sequential produces of the same key (steady state). One JSON line.
use std::time::Instant;

use fn_rskafka::{partition_for, Publisher, Settings};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let topic = std::env::var("BENCH_TOPIC").unwrap_or_else(|_| "huleedu.ras.batch.results.ready.v1".into());
    let key = std::env::var("BENCH_KEY").unwrap_or_else(|_| "batch-0001".into());
    let n: usize = std::env::var("BENCH_N").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let value = vec![b'x'; 2000];
    rt.block_on(async {
        let settings = Settings::from_env(true).unwrap();
        let t0 = Instant::now();
        let p = Publisher::connect(&settings).await.unwrap();
        let t_conn = t0.elapsed();
        let (partition, offset) = p.produce(&topic, key.as_bytes(), &value).await.unwrap();
        let first = t0.elapsed();
        let mut lat = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            p.produce(&topic, key.as_bytes(), &value).await.unwrap();
            lat.push(t.elapsed().as_secs_f64() * 1e3);
        }
        lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let q = |f: f64| if lat.is_empty() { 0.0 } else { lat[((lat.len() as f64 - 1.0) * f).round() as usize] };
        println!(
            "{{\"client\":\"rskafka\",\"connect_ms\":{:.3},\"first_ms\":{:.3},\"steady_median_ms\":{:.3},\"steady_p90_ms\":{:.3},\"partition\":{},\"expected_partition\":{},\"offset\":{}}}",
            t_conn.as_secs_f64() * 1e3,
            first.as_secs_f64() * 1e3,
            q(0.5),
            q(0.9),
            partition,
            partition_for(key.as_bytes(), 3),
            offset
        );
    });
}
