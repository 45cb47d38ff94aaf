-- wrk script for bench/load.sh: posts hostile code to /v1/eval as the `evil`
-- user, cycling through infinite loops, memory bombs, deep recursion, an
-- SSRF attempt and a 200 MB result. The key comes from EVIL_KEY.
local bodies = {
  '{"code": "for (;;) {}"}',
  '{"code": "let s = \'x\'; for (;;) s += s"}',
  '{"code": "function f() { return f() } return f()"}',
  '{"code": "return await fetch(\'http://169.254.169.254/\')"}',
  '{"code": "return \'x\'.repeat(200 * 1024 * 1024)"}',
}
local next_body = 0
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("EVIL_KEY")
wrk.headers["Content-Type"] = "application/json"

request = function()
  next_body = next_body % #bodies + 1
  return wrk.format(nil, "/v1/eval", nil, bodies[next_body])
end
