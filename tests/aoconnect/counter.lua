-- The process aoconnect spawns in mainnet mode (the item's data): a
-- counter. `Inc` adds one, prints the count and sends it back to the
-- sender; `Get` prints the count.
function init(process) return { count = 0 } end

Handlers.add("inc", { action = "Inc" }, function(msg, state)
  state.count = state.count + 1
  print("count=" .. state.count)
  Send({ Target = msg.From, Action = "Count", Data = tostring(state.count) })
end)

Handlers.add("get", { action = "Get" }, function(msg, state)
  print("count=" .. state.count)
end)
