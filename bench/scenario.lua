-- wrk script for every benchmark scenario; the harness (bench/run.ts) sets the environment.
--   BENCH_SCENARIO  read | list | list-filter | create | update | mix | path | post
--   BENCH_PATH      the path for "path" (e.g. /livez) and "post"
--   BENCH_BODY_FILE the body "post" sends, as it is (binary bodies too), with BENCH_CONTENT_TYPE
--   BENCH_TOKEN     bearer token, when the service checks one
--   BENCH_BOOKS     how many books were seeded (ids are derived from 1..BENCH_BOOKS)
local scenario = os.getenv("BENCH_SCENARIO")
local path = os.getenv("BENCH_PATH") or "/"
local token = os.getenv("BENCH_TOKEN")
local books = tonumber(os.getenv("BENCH_BOOKS") or "100000")

local json = { ["content-type"] = "application/json" }
local plain = {}
local posted = { ["content-type"] = os.getenv("BENCH_CONTENT_TYPE") }
if token and token ~= "" then
  json["authorization"] = "Bearer " .. token
  plain["authorization"] = "Bearer " .. token
  posted["authorization"] = "Bearer " .. token
end

local posted_body = ""
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
  local file = assert(io.open(body_file, "rb"))
  posted_body = file:read("*a")
  file:close()
end

local function book_path()
  return string.format("/v1/books/00000000-0000-7000-8000-%012x", math.random(books))
end

local body = '{"title":"A benchmark book","author":"Ann Leckie","published_date":"2001-02-03",'
  .. '"description":"Written by the load generator."}'

local function read() return wrk.format("GET", book_path(), plain) end
local function update() return wrk.format("PUT", book_path(), json, body) end

local scenarios = {
  read = read,
  update = update,
  list = function() return wrk.format("GET", "/v1/books", plain) end,
  ["list-filter"] = function()
    local k = math.random(0, 999)
    local author = string.char(65 + k % 26, 97 + math.floor(k / 26) % 26, 97 + math.floor(k / 676))
    return wrk.format("GET", "/v1/books?author=Author%20" .. author .. "&sort=title", plain)
  end,
  create = function() return wrk.format("POST", "/v1/books", json, body) end,
  mix = function() if math.random(10) == 1 then return update() end return read() end,
  path = function() return wrk.format("GET", path, plain) end,
  post = function() return wrk.format("POST", path, posted, posted_body) end,
}

function init(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
request = scenarios[scenario]

-- One JSON line for the harness: counts, and latency percentiles in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,'
      .. '"write_errors":%d,"timeouts":%d,"non_2xx":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
