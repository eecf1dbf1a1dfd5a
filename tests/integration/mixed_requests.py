"""A deterministic mix of valid SendRequests for every provider and type sendq supports."""
import base64

AMR = base64.b64encode(b"#!AMR\n" + bytes(range(64))).decode()
CREATED_AT = 1794999000000

COMBOS = [
    ("sender", "text"), ("sender", "image"), ("sender", "voice"), ("sender", "video"), ("sender", "location"),
    ("sender", "link"), ("sender", "custom"), ("sender", "template"), ("sender", "file"),
    ("gewe", "text"), ("gewe", "image"), ("gewe", "voice"), ("gewe", "video"), ("gewe", "file"), ("gewe", "link"),
    ("im", "text"), ("im", "image"), ("im", "voice"),
    ("gps", "voice"),
]


def body_for(provider, type_, i):
    if type_ == "text":
        return {"text": f"hello #{i} 你好"}
    if type_ == "image":
        return {"url": f"https://cdn.example/img/{i}.jpg", "size": 2048 + i}
    if type_ == "voice":
        if provider == "sender":
            return {"name": f"u{i:032x}.mp3", "url": f"https://cdn.example/voice/{i}.mp3", "format": "mp3",
                    "duration_ms": 1500 + i, "size": 4096}
        if provider == "gewe":
            return {"url": f"https://cdn.example/voice/{i}.silk", "format": "silk", "duration_ms": 2000 + i}
        if provider == "im":
            return {"url": f"https://cdn.example/voice/{i}.mp3", "format": "mp3", "duration_ms": 3000}
        return {"data_base64": AMR, "format": "amr", "duration_ms": 2500}
    if type_ == "video":
        if provider == "sender":
            return {"name": f"{i:032x}.mp4", "url": f"https://cdn.example/v/{i}.mp4", "size": 1048576,
                    "duration_ms": 12000, "thumb_name": f"{i}.jpg", "thumb_url": f"https://cdn.example/t/{i}.jpg",
                    "thumb_size": 4096, "title": "clip", "description": "a clip", "width": 320, "height": 240}
        return {"name": f"{i}.mp4", "url": f"https://cdn.example/v/{i}.mp4", "thumb_url": f"https://cdn.example/t/{i}.jpg",
                "duration_ms": 12345}
    if type_ == "location":
        return {"lat": 31.2304, "lng": 121.4737, "address": "上海"}
    if type_ == "file":
        return {"url": f"https://cdn.example/f/{i}.pdf", "name": f"report-{i}.pdf", "size": 1000}
    if type_ == "link":
        return {"title": f"news {i}", "desc": "details", "linkUrl": f"https://example.org/{i}",
                "thumbUrl": "https://example.org/t.jpg"}
    if type_ == "template":
        return {"templetId": 7, "content": "{\"name\":\"x\"}"}
    return {"MsgType": "card", "Content": "{\"k\":1}"}


def request(i, prefix="req"):
    provider, type_ = COMBOS[i % len(COMBOS)]
    req = {
        "id": f"{prefix}-{i:05d}-{provider}-{type_}",
        "provider": provider,
        "type": type_,
        "from": str(100000 + i) if provider == "gps" else f"u{i:04d}",
        "to": {"sender": f"14899228901900{i % 10}", "gewe": f"{34757816141 + i % 7}@chatroom", "im": f"user{i % 13}",
               "gps": f"86{i % 5:013d}"}[provider],
        "body": body_for(provider, type_, i),
        "created_at": CREATED_AT + i,
    }
    if provider == "sender":
        req["ext"] = {"chatType": "WX", "chatClient": "9bf18c20d5f54f459e0232246c2305c8"}
    if provider == "im" and i % 2:
        req["provider_fields"] = {"fromrole": "SALER", "channel": "WX", "f_nickname": "客服"}
    return req
