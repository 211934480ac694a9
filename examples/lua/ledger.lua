-- A token ledger. The definition lists its `holders` (process IDs) and
-- gives each `each` tokens. `Transfer` moves `quantity` from the sender
-- (`from`: the pushing process, which senders cannot spoof) to
-- `recipient`, and notifies both through their outboxes; `Balance` and
-- `Balances` print.
function init(process)
  local balances = {}
  for _, holder in ipairs(process.holders) do
    balances[holder] = tonumber(process.each)
  end
  return { balances = balances, transfers = 0 }
end

Handlers.add("transfer", { action = "Transfer" }, function(msg, state)
  local qty = math.tointeger(tonumber(msg.quantity))
  local from = msg.from
  if not qty or qty <= 0 or not from or (state.balances[from] or 0) < qty then
    print("refused")
    return
  end
  state.balances[from] = state.balances[from] - qty
  state.balances[msg.recipient] = (state.balances[msg.recipient] or 0) + qty
  state.transfers = state.transfers + 1
  Send({ target = from, action = "Debit-Notice", quantity = tostring(qty) })
  Send({ target = msg.recipient, action = "Credit-Notice", quantity = tostring(qty) })
end)

Handlers.add("balance", { action = "Balance" }, function(msg, state)
  print(state.balances[msg.account or msg.from] or 0)
end)

Handlers.add("balances", { action = "Balances" }, function(msg, state)
  for holder, amount in pairs(state.balances) do print(holder .. "=" .. amount) end
end)
