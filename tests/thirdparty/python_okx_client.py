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
import okx.PublicData as PublicData
import okx.Trade as Trade
import websockets
from okx.websocket import WsUtils

REST = os.environ["SIM_REST"]
WS = os.environ["SIM_WS_PRIVATE"]
KEY, SECRET, PASS = os.environ["OKX_API_KEY"], os.environ["OKX_API_SECRET"], os.environ["OKX_API_PASSPHRASE"]


def check(name, ok, detail):
    print(("ok   " if ok else "FAIL ") + name + ": " + json.dumps(detail)[:300], flush=True)
    if not ok:
        sys.exit(1)


public = PublicData.PublicAPI(flag="1", domain=REST)
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
print("all checks passed")
