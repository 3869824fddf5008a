"""A third-party OKX client against `tradebox sim`: the official python SDK (python-okx),
unmodified, pointed at the simulator's URL with the simulator's key.

REST goes entirely through python-okx. For the private WebSocket push, python-okx's
`WsPrivateAsync` insists on TLS (it passes an SSL context even for `ws://` URLs, which the
`websockets` library refuses), so the script connects with the same `websockets` library
python-okx uses and logs in with python-okx's own `WsUtils.initLoginParams`.

Environment: SIM_REST (http://127.0.0.1:PORT), SIM_WS_PRIVATE (ws://.../ws/v5/private),
OKX_API_KEY, OKX_API_SECRET, OKX_API_PASSPHRASE. Prints one line per check; exits 1 on the
first failure.
"""

import asyncio
import json
import os
import sys

import okx.Account as Account
import okx.Funding as Funding
import okx.MarketData as MarketData
import okx.PublicData as PublicData
import okx.Trade as Trade
import websockets
from okx import consts
from okx.websocket import WsUtils

REST = os.environ["SIM_REST"]
WS = os.environ["SIM_WS_PRIVATE"]
KEY, SECRET, PASS = os.environ["OKX_API_KEY"], os.environ["OKX_API_SECRET"], os.environ["OKX_API_PASSPHRASE"]


def check(name, ok, detail):
    print(("ok   " if ok else "FAIL ") + name + ": " + json.dumps(detail)[:300], flush=True)
    if not ok:
        sys.exit(1)


public = PublicData.PublicAPI(flag="1", domain=REST)
market = MarketData.MarketAPI(flag="1", domain=REST)
funding = Funding.FundingAPI(KEY, SECRET, PASS, False, "1", domain=REST)
account = Account.AccountAPI(KEY, SECRET, PASS, False, "1", domain=REST)
trade = Trade.TradeAPI(KEY, SECRET, PASS, False, "1", domain=REST)

r = public.get_system_time()
check("time", r["code"] == "0" and int(r["data"][0]["ts"]) > 0, r)
r = public.get_instruments(instType="SPOT")
btc = [i for i in r["data"] if i["instId"] == "BTC-USDT"]
check("instruments", r["code"] == "0" and btc and btc[0]["tickSz"] == "0.1", btc[:1])
r = account.get_account_balance()
usdt = [d for d in r["data"][0]["details"] if d["ccy"] == "USDT"] if r["code"] == "0" else []
check("balance", usdt and float(usdt[0]["availBal"]) > 0, r)


async def private_push():
    async with websockets.connect(WS) as ws:
        await ws.send(WsUtils.initLoginParams(useServerTime=False, apiKey=KEY, passphrase=PASS, secretKey=SECRET))
        login = json.loads(await ws.recv())
        check("ws login", login.get("event") == "login" and login.get("code") == "0", login)
        await ws.send(json.dumps({"op": "subscribe", "args": [{"channel": "orders", "instType": "SPOT"}]}))
        ack = json.loads(await ws.recv())
        check("ws subscribe", ack.get("event") == "subscribe", ack)
        r = trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="limit", px="1000", sz="0.001",
                              clOrdId="py1")
        check("place", r["code"] == "0" and r["data"][0]["sCode"] == "0", r)
        ord_id = r["data"][0]["ordId"]
        r = trade.get_order(instId="BTC-USDT", clOrdId="py1")
        check("query", r["code"] == "0" and r["data"][0]["ordId"] == ord_id and r["data"][0]["state"] == "live", r)
        # Events (OKX's channel-conn-count after a private subscription) come before the push.
        push = json.loads(await asyncio.wait_for(ws.recv(), 5))
        while "event" in push:
            push = json.loads(await asyncio.wait_for(ws.recv(), 5))
        check("ws orders push", push["arg"]["channel"] == "orders" and push["data"][0]["clOrdId"] == "py1", push)
        r = trade.cancel_order(instId="BTC-USDT", clOrdId="py1")
        check("cancel", r["code"] == "0" and r["data"][0]["sCode"] == "0", r)
        while True:
            push = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if push.get("arg", {}).get("channel") == "orders" and push["data"][0]["state"] == "canceled":
                break
        check("ws cancel push", True, push["data"][0]["state"])
        r = trade.get_order(instId="BTC-USDT", clOrdId="py1")
        check("query cancelled", r["data"][0]["state"] == "canceled", r)


asyncio.run(private_push())


def is_num(v):
    try:
        float(v)
        return isinstance(v, str)
    except (TypeError, ValueError):
        return False


def ok_list(r):
    return r.get("code") == "0" and isinstance(r.get("data"), list)


# Market data: tickers, candles (and paging back through history), public trades.
r = market.get_tickers(instType="SPOT")
check("tickers", ok_list(r) and {"BTC-USDT", "ETH-USDT"} <= {t["instId"] for t in r["data"]}
      and all(is_num(t["askPx"]) and is_num(t["bidPx"]) and is_num(t["last"]) for t in r["data"]), r)
r = market.get_ticker(instId="BTC-USDT")
check("ticker", ok_list(r) and is_num(r["data"][0]["askPx"]), r)
ask = float(r["data"][0]["askPx"])
r = market.get_candlesticks(instId="BTC-USDT", bar="1m", limit="5")
rows = r.get("data", [])
check("candles", ok_list(r) and 1 <= len(rows) <= 5 and all(len(c) == 9 and all(isinstance(x, str) for x in c)
      for c in rows) and rows[0][8] in ("0", "1") and [c[0] for c in rows] == sorted((c[0] for c in rows), key=int, reverse=True), r)
for bar in ["1m", "5m", "15m", "1H", "4H", "1D"]:
    r = market.get_history_candlesticks(instId="BTC-USDT-SWAP", bar=bar, limit="100")
    rows = r.get("data", [])
    check("history-candles " + bar, ok_list(r) and rows and all(len(c) == 9 for c in rows)
          and float(rows[0][2]) >= float(rows[0][3]), rows[:2])
    older = market.get_history_candlesticks(instId="BTC-USDT-SWAP", bar=bar, after=rows[0][0])
    check("history-candles paging " + bar, ok_list(older) and all(int(c[0]) < int(rows[0][0]) for c in older["data"]),
          older)
r = market.get_candlesticks(instId="BTC-USDT", bar="7m")
check("candles bad bar", r.get("code") == "51000", r)
r = market.get_trades(instId="BTC-USDT", limit="3")
check("trades", ok_list(r) and len(r["data"]) <= 3 and all(t["side"] in ("buy", "sell") and is_num(t["px"])
      and is_num(t["sz"]) and t["instId"] == "BTC-USDT" for t in r["data"]), r)

# A fill, then the paper trail: orders history, fills history, bills, fee rates.
r = trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="ioc", px="%.1f" % (ask * 1.02),
                      sz="0.01", clOrdId="py9")
check("ioc place", r["code"] == "0" and r["data"][0]["sCode"] == "0", r)
filled = r["data"][0]["ordId"]
r = trade.get_orders_history(instType="SPOT")
mine = [o for o in r.get("data", []) if o["ordId"] == filled]
check("orders-history", ok_list(r) and mine and mine[0]["state"] == "filled" and float(mine[0]["accFillSz"]) == 0.01
      and any(o["clOrdId"] == "py1" and o["state"] == "canceled" for o in r["data"]), r)
r = trade.get_orders_history(instType="SPOT", state="filled", ordType="ioc", limit="1")
check("orders-history filtered", ok_list(r) and [o["ordId"] for o in r["data"]] == [filled], r)
r = trade.get_orders_history_archive(instType="SPOT")
check("orders-history-archive", ok_list(r) and any(o["ordId"] == filled for o in r["data"]), r)
r = trade.get_orders_history(instType="")
check("orders-history needs instType", r.get("code") == "50014", r)
r = trade.get_fills_history(instType="SPOT", ordId=filled)
check("fills-history", ok_list(r) and r["data"] and all(f["subType"] == "1" and float(f["fee"]) < 0
      and float(f["feeRate"]) < 0 and f["billId"] for f in r["data"])
      and abs(sum(float(f["fillSz"]) for f in r["data"]) - 0.01) < 1e-12, r)
r = account.get_account_bills(instType="SPOT")
bills = r.get("data", [])
check("bills", ok_list(r) and len(bills) >= 2 and all(b["type"] == "2" and is_num(b["balChg"]) and is_num(b["bal"])
      for b in bills) and [int(b["billId"]) for b in bills] == sorted((int(b["billId"]) for b in bills), reverse=True)
      and {b["ccy"] for b in bills} == {"BTC", "USDT"}, bills[:2])
r = account.get_account_bills(after=bills[0]["billId"], limit="1")
check("bills paging", ok_list(r) and len(r["data"]) == 1 and int(r["data"][0]["billId"]) < int(bills[0]["billId"]), r)
r = account.get_fee_rates(instType="SPOT", instId="BTC-USDT")
check("trade-fee", ok_list(r) and float(r["data"][0]["maker"]) < 0 and float(r["data"][0]["taker"]) < 0
      and r["data"][0]["feeGroup"][0]["taker"] == r["data"][0]["taker"], r)

# Batch amend and cancel: per-item sCode, top-level code 0.
ids = []
for cl in ("py2", "py3"):
    r = trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="limit", px="1000", sz="0.001",
                          clOrdId=cl)
    check("place " + cl, r["code"] == "0", r)
    ids.append(r["data"][0]["ordId"])
r = trade.amend_multiple_orders([{"instId": "BTC-USDT", "ordId": ids[0], "newPx": "1001"},
                                 {"instId": "BTC-USDT", "clOrdId": "py3", "newSz": "0.002"}])
check("amend-batch-orders", r["code"] == "0" and [i["sCode"] for i in r["data"]] == ["0", "0"], r)
r = trade.get_order(instId="BTC-USDT", clOrdId="py2")
check("amended", float(r["data"][0]["px"]) == 1001, r)
r = trade.cancel_multiple_orders([{"instId": "BTC-USDT", "ordId": i} for i in ids] + [{"instId": "BTC-USDT", "clOrdId": "gone"}])
check("cancel-batch-orders", r["code"] == "2" and [i["sCode"] for i in r["data"]] == ["0", "0", "51400"], r)

# mass-cancel: python-okx 0.4.4 has no method for it; its own request machinery sends it.
r = trade._request_with_params(consts.POST, "/api/v5/trade/mass-cancel", {"instType": "SPOT", "instFamily": "BTC-USDT"})
check("mass-cancel spot refused", r.get("code") == "51000", r)
r = trade._request_with_params(consts.POST, "/api/v5/trade/mass-cancel", {"instType": "OPTION", "instFamily": "BTC-USD"})
check("mass-cancel option", r.get("code") == "0" and r["data"] == [{"result": True}], r)

# The funding account.
r = funding.get_currencies()
check("currencies", ok_list(r) and {"BTC", "ETH", "USDT"} <= {c["ccy"] for c in r["data"]}
      and all(isinstance(c["canDep"], bool) and isinstance(c["canWd"], bool) for c in r["data"]), r)
r = funding.get_currencies(ccy="BTC")
check("currencies filtered", ok_list(r) and [c["ccy"] for c in r["data"]] == ["BTC"], r)
r = funding.get_balances()
check("funding balances", ok_list(r) and r["data"] == [{"ccy": "USDT", "bal": "500", "frozenBal": "0", "availBal": "500"}], r)
print("all checks passed")
