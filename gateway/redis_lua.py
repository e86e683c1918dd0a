"""Lua shared by the gateway's Redis scripts (gateway/collab/lock_scripts.py, gateway/live/
attendance.py). Their times are Redis' (`TIME`), one clock for every instance, whatever the
hosts' clocks say."""

# Defines `now_ms()`: Redis' time in milliseconds. Prepend it to a script that calls it.
NOW = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
"""
