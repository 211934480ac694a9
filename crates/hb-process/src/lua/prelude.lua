-- The host prelude of lua@5.3a (SPEC §6.10). It runs once in every fresh VM,
-- before the sandbox is closed, with the full standard libraries and the
-- debug library still present. It receives the host's Rust functions and
-- returns the host-only table `HB`. Everything it creates is a permanent:
-- the same code builds the same objects in every VM, so snapshots name
-- them instead of serialising them. For that to hold, no function made
-- here may keep mutable state in a local upvalue: mutable state lives in
-- tables reachable from the globals (Handlers.list, ao), which snapshots
-- persist.
local host = ...

local raw = {
  pcall = pcall,
  xpcall = xpcall,
  error = error,
  type = type,
  select = select,
  tostring = tostring,
  getmetatable = debug.getmetatable,
  setmetatable = setmetatable,
  rawget = rawget,
  rawset = rawset,
  rawequal = rawequal,
  load = load,
  resume = coroutine.resume,
  create = coroutine.create,
  format = string.format,
  lower = string.lower,
  find = string.find,
  concat = table.concat,
  unpack = table.unpack,
}

local limit_hit = host.limit_hit
local MEMERR = "not enough memory"

-- Lua reports memory exhaustion as "not enough memory", and its auxiliary
-- library as "...: not enough memory for buffer allocation".
local function is_memerr(e)
  return raw.type(e) == "string" and raw.find(e, MEMERR, 1, true) ~= nil
end

-- tostring without addresses: tables, functions, threads and userdata
-- print as their type unless a __tostring metamethod says otherwise.
local function safe_tostring(v)
  local t = raw.type(v)
  if t == "table" or t == "userdata" then
    local mt = raw.getmetatable(v)
    if raw.type(mt) == "table" and raw.rawget(mt, "__tostring") ~= nil then
      return raw.tostring(v)
    end
    return t
  elseif t == "function" or t == "thread" then
    return t
  elseif t == "number" and v ~= v then
    -- C libraries print NaN as "nan" or "-nan" depending on the platform.
    return "nan"
  end
  return raw.tostring(v)
end

-- Once a limit is hit, nothing may catch the error: protected calls that
-- fail while a limit is hit re-raise.
local function pass(ok, ...)
  if not ok then
    local e = ...
    if is_memerr(e) or limit_hit() then
      raw.error(e, 0)
    end
  end
  return ok, ...
end

local function safe_pcall(f, ...)
  return pass(raw.pcall(f, ...))
end

local function safe_xpcall(f, h, ...)
  return pass(raw.xpcall(f, h, ...))
end

local function safe_resume(co, ...)
  return pass(raw.resume(co, ...))
end

local function wrap_results(ok, ...)
  if ok then
    return ...
  end
  local e = ...
  if raw.type(e) == "string" and not (is_memerr(e) or limit_hit()) then
    raw.error(e, 2)
  end
  raw.error(e, 0)
end

local function safe_wrap(f)
  local co = raw.create(f)
  return function(...)
    return wrap_results(raw.resume(co, ...))
  end
end

-- Host functions report user-caused failures as (false, message); these
-- wrappers raise them as ordinary Lua errors at the caller's position.
local function check(ok, ...)
  if not ok then
    raw.error((...), 3)
  end
  return ...
end

local function safe_next(t, k)
  return check(host.next(t, k))
end

local function safe_pairs(t)
  local mt = raw.getmetatable(t)
  if raw.type(mt) == "table" then
    local p = raw.rawget(mt, "__pairs")
    if p ~= nil then
      local a, b, c = p(t)
      return a, b, c
    end
  end
  local keys = check(host.sorted_keys(t))
  local i = 0
  return function(tt)
    while true do
      i = i + 1
      local k = keys[i]
      if k == nil then
        return nil
      end
      local v = raw.rawget(tt, k)
      if v ~= nil then
        return k, v
      end
    end
  end, t, nil
end

local function safe_print(...)
  local n = raw.select("#", ...)
  local parts = {}
  for i = 1, n do
    parts[i] = safe_tostring((raw.select(i, ...)))
  end
  check(host.emit(raw.concat(parts, "\t")))
end

local function safe_send(t)
  check(host.send(t))
  return t
end

local function safe_load(...)
  local n = raw.select("#", ...)
  local chunk, name, _, env = ...
  if n >= 4 then
    return raw.load(chunk, name, "t", env)
  end
  return raw.load(chunk, name, "t")
end

local function safe_setmetatable(t, mt)
  if raw.type(mt) == "table" and (raw.rawget(mt, "__gc") ~= nil or raw.rawget(mt, "__mode") ~= nil) then
    raw.error("__gc and __mode are not supported: they make results depend on garbage collection", 2)
  end
  return raw.setmetatable(t, mt)
end

local function safe_format(fmt, ...)
  local n = raw.select("#", ...)
  local args = { ... }
  for i = 1, n do
    local t = raw.type(args[i])
    if t == "table" or t == "function" or t == "thread" or t == "userdata" then
      args[i] = safe_tostring(args[i])
    end
  end
  return raw.format(fmt, raw.unpack(args, 1, n))
end

-- Message tables look string keys up ASCII case-insensitively.
local message_mt = {}
message_mt.__index = function(t, k)
  if raw.type(k) == "string" then
    local l = raw.lower(k)
    if l ~= k then
      return raw.rawget(t, l)
    end
  end
  return nil
end

-- The aos-style dispatcher. Its state is Handlers.list, a table reachable
-- from the globals.
local Handlers = { list = {} }

function Handlers.add(name, pattern, fn)
  if fn == nil then
    fn = pattern
    pattern = name
  end
  local list = Handlers.list
  local entry = { name = name, pattern = pattern, handle = fn }
  local i = 1
  while list[i] ~= nil do
    if list[i].name == name then
      list[i] = entry
      return
    end
    i = i + 1
  end
  list[i] = entry
end

function Handlers.remove(name)
  local list = Handlers.list
  local i = 1
  while list[i] ~= nil do
    if list[i].name == name then
      table.remove(list, i)
      return
    end
    i = i + 1
  end
end

local function matches(pattern, msg)
  local pt = raw.type(pattern)
  if pt == "function" then
    return pattern(msg) and true or false
  elseif pt == "string" then
    return msg.action == pattern
  elseif pt == "table" then
    for k, v in safe_pairs(pattern) do
      if raw.type(v) == "function" then
        if not v(msg[k], msg) then
          return false
        end
      elseif msg[k] ~= v then
        return false
      end
    end
    return true
  end
  return false
end

local function evaluate(msg, state)
  local list = Handlers.list
  local i = 1
  while true do
    local h = list[i]
    if h == nil then
      break
    end
    if matches(h.pattern, msg) then
      if h.handle(msg, state) == "break" then
        break
      end
    end
    i = i + 1
  end
end
Handlers.evaluate = evaluate

-- Error objects as deterministic text (no addresses).
local function error_text(e)
  local t = raw.type(e)
  if t == "string" then
    return e
  elseif t == "number" then
    return raw.tostring(e)
  elseif t == "table" then
    local mt = raw.getmetatable(e)
    if raw.type(mt) == "table" and raw.rawget(mt, "__tostring") ~= nil then
      local ok, s = raw.pcall(raw.tostring, e)
      if ok and raw.type(s) == "string" then
        return s
      end
    end
  end
  return "(error object is a " .. t .. " value)"
end

-- The globals scripts see.
pairs = safe_pairs
next = safe_next
tostring = safe_tostring
print = safe_print
load = safe_load
pcall = safe_pcall
xpcall = safe_xpcall
setmetatable = safe_setmetatable
coroutine.resume = safe_resume
coroutine.wrap = safe_wrap
string.format = safe_format
Send = safe_send
_ENV.Handlers = Handlers
ao = {}

return {
  raw = raw,
  message_mt = message_mt,
  string_mt = debug.getmetatable(""),
  evaluate = evaluate,
  -- run(f, ...) -> true, results... | false, error text. Never raises
  -- except on memory exhaustion outside the protected call.
  run = function(f, ...)
    return raw.xpcall(f, error_text, ...)
  end,
}
