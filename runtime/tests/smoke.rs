use valbox_runtime::*;
#[test]
fn smoke() {
    let t = std::time::Instant::now();
    let sb = Sandbox::new(SandboxConfig { cache_dir: Some(env!("CARGO_TARGET_TMPDIR").into()), ..Default::default() }).unwrap();
    eprintln!("new {:?}", t.elapsed());
    let bc = sb.compile("add.js", "export function add(a,b){ console.log('hi', {a}, [1,2]); return a+b }").unwrap();
    eprintln!("bc {}", bc.len());
    let out = sb.call(Code::Bytecode(&bc), "add", "[1,2]");
    eprintln!("{:?}", out);
    eprintln!("{:?}", sb.compile("x.js", "export function f( {\n return 1 }"));
    let bc2 = sb.compile("e.js", "export default async function(){ await null; throw new TypeError('boom') }").unwrap();
    eprintln!("{:?}", sb.call(Code::Bytecode(&bc2), "e", "[]"));
    let t = std::time::Instant::now();
    let p = sb.prepare(&sb.compile("add.js", "export function add(a,b){ return a+b }").unwrap()).unwrap();
    eprintln!("prepare {:?}", t.elapsed());
    eprintln!("{:?}", sb.call(Code::Prepared(&p), "add", "[5,2]"));
    let bc3 = sb.compile("l.js", "export default function(){ while(true){} }").unwrap();
    let sb2 = Sandbox::new(SandboxConfig { cache_dir: Some(env!("CARGO_TARGET_TMPDIR").into()), deadline: std::time::Duration::from_millis(200), ..Default::default() }).unwrap();
    let t = std::time::Instant::now();
    eprintln!("{:?} {:?}", sb2.call(Code::Bytecode(&bc3), "l", "[]"), t.elapsed());
    let t = std::time::Instant::now();
    for _ in 0..1000 { sb.call(Code::Bytecode(&bc), "add", "[1,2]").result.unwrap(); }
    eprintln!("bc call {:?}", t.elapsed()/1000);
    let t = std::time::Instant::now();
    for _ in 0..1000 { sb.call(Code::Prepared(&p), "add", "[1,2]").result.unwrap(); }
    eprintln!("prepared call {:?}", t.elapsed()/1000);
}
