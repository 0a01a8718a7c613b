//! API Gateway (HTTP API 2.0 / REST / ALB) events through `lambda_http`'s adapter and the
//! router, the way the Lambda runtime invokes the function. Events that are not request events
//! are rejected; every answered request is below 500 with a JSON body, errors exactly one
//! known `{"error": …}`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ras_fuzz::{api_router, check_response, runtime};
use serde_json::Value;

/// `lambda_http` 1.3 panics on events whose host and path do not form a URL;
/// `api::lambda::handle` catches that panic and answers 400. libFuzzer's panic hook would abort
/// on the caught panic, so this target's hook stays silent for that one known panic site and
/// reports every other panic (which still aborts the run as a crash).
fn tolerate_lambda_http_url_panic() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let known = info.location().is_some_and(|l| {
                l.file().contains("lambda_http") && l.file().ends_with("request.rs")
            });
            if !known {
                default(info);
                std::process::abort();
            }
        }));
    });
}

fuzz_target!(|data: &[u8]| {
    tolerate_lambda_http_url_panic();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(response) = runtime().block_on(api::lambda::invoke(api_router(), text)) else {
        return;
    };
    let status = response
        .get("statusCode")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no statusCode in {response}"));
    let body = response.get("body").and_then(Value::as_str).unwrap_or("");
    let encoded = response.get("isBase64Encoded").and_then(Value::as_bool) == Some(true);
    if !encoded {
        check_response(
            u16::try_from(status).unwrap_or(u16::MAX),
            body.as_bytes(),
            &text,
        );
    }
});
