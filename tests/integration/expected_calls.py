"""What each provider must receive for a SendRequest, written independently of the C++ adapters
from docs/providers.md (and the seed documents it cites), for the conformance checks."""
import datetime
import math
import urllib.parse

DEMO = {
    "sender": {"api_version": "01", "client": "demo-client", "channel": "demo-channel", "version": "2.0", "sign": "demo-sign"},
    "gewe": {"token": "demo-gewe-token", "app_id": "demo-gewe-app"},
    "im": {"appid": "JH"},
    "gps": {"token": "demo-gps-token", "app_id": "demo-gps-app", "language": "zh-CN"},
}

SENDER_TYPES = {"text": 1, "image": 2, "voice": 3, "video": 4, "location": 5, "link": 7, "custom": 8, "template": 9, "file": 10}
GEWE_PATHS = {"text": "/message/postText", "image": "/message/postImage", "voice": "/message/postVoice",
              "video": "/message/postVideo", "file": "/message/postFile", "link": "/message/postLink"}


def ceil_s(ms):
    return int(math.ceil(ms / 1000))


def drop_none(d):
    return {k: v for k, v in d.items() if v is not None}


def expected_call(req):
    """(path, query dict or None, headers dict subset, body dict) the provider must receive."""
    p, t, b = req["provider"], req["type"], req["body"]
    if p == "sender":
        a = DEMO["sender"]
        query = {"apiVersion": a["api_version"], "client": a["client"], "channel": a["channel"],
                 "version": a["version"], "sign": a["sign"]}
        if t == "voice":
            info = drop_none({"audioMessage": b.get("name"), "fileUrl": b.get("url"), "fileLength": b.get("size"),
                              "duration": ceil_s(b["duration_ms"])})
        elif t == "video":
            info = drop_none({"videoMessage": b.get("name"), "thumbMessage": b.get("thumb_name"), "title": b.get("title"),
                              "description": b.get("description"), "fileUrl": b.get("url"), "fileLength": b.get("size"),
                              "duration": ceil_s(b["duration_ms"]) if "duration_ms" in b else None,
                              "thumbFileUrl": b.get("thumb_url"), "thumbFileLength": b.get("thumb_size"),
                              "imageWidth": b.get("width"), "imageHeight": b.get("height")})
        else:
            info = b
        body = {"messageType": SENDER_TYPES[t], "from": req["from"], "to": req["to"], "messageInfo": info}
        if "ext" in req:
            body["ext"] = req["ext"]
        body["getMessageId"] = req["id"]
        return "/sender/v1/handleBasicMessage", query, {}, body
    if p == "gewe":
        a = DEMO["gewe"]
        body = {"appId": a["app_id"], "toWxid": req["to"]}
        if t == "text":
            body["content"] = b["text"]
            if "ats" in req.get("provider_fields", {}):
                body["ats"] = req["provider_fields"]["ats"]
        elif t == "image":
            body["imgUrl"] = b["url"]
        elif t == "voice":
            body.update({"voiceUrl": b["url"], "voiceDuration": b["duration_ms"]})
        elif t == "video":
            body.update({"videoUrl": b["url"], "thumbUrl": b["thumb_url"], "videoDuration": ceil_s(b["duration_ms"])})
        elif t == "file":
            body.update({"fileUrl": b["url"], "fileName": b["name"]})
        elif t == "link":
            body.update({"title": b["title"], "desc": b["desc"], "linkUrl": b["linkUrl"], "thumbUrl": b["thumbUrl"]})
        return GEWE_PATHS[t], None, {"x-gewe-token": a["token"]}, body
    if p == "im":
        pf = req.get("provider_fields", {})
        defaults = {"fromarea": "", "fromrole": "MEMBER", "f_nickname": "", "f_avatar": "", "t_nickname": "",
                    "t_avatar": "", "channel": "PC"}
        v = {k: pf.get(k, d) for k, d in defaults.items()}
        content = b["text"] if t == "text" else b["url"]
        body = {"appid": DEMO["im"]["appid"], "from": req["from"], "fromarea": v["fromarea"], "fromrole": v["fromrole"],
                "f_nickname": v["f_nickname"], "f_avatar": v["f_avatar"], "to": req["to"], "t_nickname": v["t_nickname"],
                "t_avatar": v["t_avatar"], "content": content, "type": t.upper(), "channel": v["channel"]}
        return "/api/im/sendMsg", None, {}, body
    if p == "gps":
        a = DEMO["gps"]
        ts = datetime.datetime.fromtimestamp(req["created_at"] / 1000, tz=datetime.timezone.utc)
        voice_time = ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{req['created_at'] % 1000:03d}+00:00"
        body = {"SerialNumber": req["to"], "Long": ceil_s(b["duration_ms"]), "VoiceTime": voice_time,
                "Command": b["data_base64"], "IdentityID": req["id"], "UserId": int(req["from"]),
                "ChatType": req.get("provider_fields", {}).get("chat_type", 1), "FileType": 1, "Token": a["token"],
                "Language": a["language"], "AppId": a["app_id"]}
        return "/api/Files/NewVoiceUpload", None, {}, body
    raise ValueError(p)


def parse_query(q):
    return dict(urllib.parse.parse_qsl(q, keep_blank_values=True)) if q else {}
