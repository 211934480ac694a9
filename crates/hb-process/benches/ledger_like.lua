-- The Lua engine bench's process (benches/lua_engine.rs, examples/restore_loop.rs):
-- a small balance update, a print and a Send per Transfer.
function init() return {balances = {}} end
local total = 0
Handlers.add("transfer", {action = "Transfer"}, function(msg, state)
  local who = msg.who
  state.balances[who] = (state.balances[who] or 0) + 1
  total = total + 1
  print("transfer", who, total)
  Send({target = who, action = "Credit"})
end)
