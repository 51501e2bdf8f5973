-- wrk-hist.lua: at the end of a wrk run, write wrk's latency histogram
-- (value in µs, count) and the run's duration and request count to the
-- file named by $WRK_HIST, for wrk-vs-nginx.sh to take wrk's coordinated
-- omission correction back out. It adds nothing to the request path.
done = function(summary, latency, requests)
  local f = assert(io.open(os.getenv("WRK_HIST"), "w"))
  f:write(string.format("# runtime_us %d requests %d\n", summary.duration, summary.requests))
  for i = 1, #latency do
    local v, c = latency(i)
    f:write(string.format("%d %d\n", v, c))
  end
  f:close()
end
