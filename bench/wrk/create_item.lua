-- POST /v1/items with a new sku every time: "WRK-<run>-<thread>-<n>", unique across threads and runs.
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  counter = 0
  run = os.time()
end
function request()
  counter = counter + 1
  local body = string.format(
    '{"sku":"WRK-%d-%d-%d","name":"Bench item","description":"made by wrk","category":"bench",' ..
    '"priceCents":100,"stock":1,"tags":["bench"]}', run, tid, counter)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
