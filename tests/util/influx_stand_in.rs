//! A stand-in for InfluxDB 1.x `/write` answering what a real influxd
//! would not (a 400 that names no line, a field-type conflict …).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A stand-in for InfluxDB 1.x `/write`: each request's lines (gunzipped)
/// go to `answer`, which returns the status and the body; the lines of
/// requests answered 204 are kept as stored.
pub(crate) struct InfluxStandIn {
    pub(crate) url: String,
    stored: Arc<Mutex<Vec<String>>>,
    requests: Arc<Mutex<usize>>,
}

/// What the stand-in answers a request's lines: status, body, and the
/// lines it stores.
pub(crate) type StandInAnswer = Arc<dyn Fn(&[String]) -> (u16, String, Vec<String>) + Send + Sync>;

impl InfluxStandIn {
    pub(crate) fn start(answer: fn(&[String]) -> (u16, String)) -> InfluxStandIn {
        InfluxStandIn::start_storing(Arc::new(move |lines: &[String]| {
            let (status, body) = answer(lines);
            let stored = if status == 204 {
                lines.to_vec()
            } else {
                Vec::new()
            };
            (status, body, stored)
        }))
    }

    /// `answer` also says which lines were stored (a partial write).
    pub(crate) fn start_storing(answer: StandInAnswer) -> InfluxStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stored = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let (st, rq) = (stored.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (st, rq, answer) = (st.clone(), rq.clone(), answer.clone());
                std::thread::spawn(move || serve_one(conn, &answer, &st, &rq));
            }
        });
        InfluxStandIn {
            url,
            stored,
            requests,
        }
    }

    pub(crate) fn stored(&self) -> Vec<String> {
        self.stored.lock().unwrap().clone()
    }

    pub(crate) fn requests(&self) -> usize {
        *self.requests.lock().unwrap()
    }
}

/// One request on `conn`: read, answer, close.
fn serve_one(
    conn: TcpStream,
    answer: &StandInAnswer,
    stored: &Mutex<Vec<String>>,
    requests: &Mutex<usize>,
) {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut reader = BufReader::new(conn);
    let (mut length, mut gzip) = (0usize, false);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end().to_ascii_lowercase();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap();
        }
        if line.starts_with("content-encoding:") && line.contains("gzip") {
            gzip = true;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let text = if gzip {
        let mut out = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut out)
            .unwrap();
        out
    } else {
        String::from_utf8(body).unwrap()
    };
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    *requests.lock().unwrap() += 1;
    let (status, answer, kept) = answer(&lines);
    stored.lock().unwrap().extend(kept);
    let mut conn = reader.into_inner();
    let _ = conn.write_all(
        format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
            answer.len()
        )
        .as_bytes(),
    );
}
