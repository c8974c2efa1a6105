-- wrk script for bench/soak.sh: a fixed-rate mix of catalog, rows, export, stats and sandbox
-- jobs. Each connection waits DELAY ms between requests (rate = connections × 1000 / DELAY).
local delay_ms = tonumber(os.getenv("SOAK_DELAY_MS") or "80")
local partner = os.getenv("SOAK_PARTNER_KEY") or ""
local job = '{"sql": "SELECT district, COUNT(*) AS n, ROUND(AVG(benefit_amount), 2) AS avg FROM residents GROUP BY district"}'
local mix = {
  {weight = 30, method = "GET", path = "/v1/datasets/enterprises/rows?_limit=100"},
  {weight = 15, method = "GET", path = "/v1/datasets/air-quality/rows?_limit=50&aqi__gte=100"},
  {weight = 15, method = "GET", path = "/v1/datasets?q=%E7%A9%BA%E6%B0%94"},
  {weight = 10, method = "GET", path = "/v1/datasets/residents"},
  {weight = 10, method = "GET", path = "/v1/stats"},
  {weight = 5,  method = "GET", path = "/v1/datasets/enterprises/export?format=csv"},
  {weight = 10, method = "GET", path = "/"},
  {weight = 5,  method = "POST", path = "/v1/sandbox/jobs", body = job, key = partner},
}
local requests = {}
for _, m in ipairs(mix) do
  local headers = {}
  if m.key and m.key ~= "" then headers["Authorization"] = "Bearer " .. m.key end
  if m.body then headers["Content-Type"] = "application/json" end
  local r = wrk.format(m.method, m.path, headers, m.body)
  for _ = 1, m.weight do table.insert(requests, r) end
end
local i = 0
function request()
  i = i + 1
  return requests[(i % #requests) + 1]
end
function delay() return delay_ms end
local errors = 0
function response(status, headers, body)
  if status >= 400 then errors = errors + 1 end
end
function done(summary, latency, requests)
  io.write(string.format("requests %d, non-2xx/3xx %d, socket errors %d, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
