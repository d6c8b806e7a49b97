#!/usr/bin/env python3
"""Capture what the real log4j 1.2 and log4j2 SyslogAppenders put on the wire.

Runs examples/java/Log4j{1,2}Demo against loopback sockets on free ports, one
appender configuration at a time, and prints one JSON object per datagram
(UDP) or per connection stream (TCP): {"sender", "transport", "hex"}.
The frames in log4j-captured.jsonl were made with this script:

    python3 tests/corpus/capture.py > tests/corpus/log4j-captured.jsonl
"""
import json, os, socket, subprocess, sys, tempfile, threading

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
JAVA = os.path.join(ROOT, "examples", "java")
LOG4J1 = "/usr/share/java/log4j-1.2.jar"
LOG4J2 = "/usr/share/java/log4j-api.jar:/usr/share/java/log4j-core.jar"

LOG4J1_VARIANTS = {
    "log4j1 header=false": "header=false\nlog4j.appender.S.facilityPrinting=false",
    "log4j1 header=true": "header=true\nlog4j.appender.S.facilityPrinting=false",
    "log4j1 header=true facilityPrinting=true": "header=true\nlog4j.appender.S.facilityPrinting=true",
}

LOG4J2_VARIANTS = {
    "log4j2 BSD udp": ('protocol="UDP" format="BSD"', "udp"),
    "log4j2 RFC5424 udp mdc": ('protocol="UDP" format="RFC5424" appName="orders" '
                               'includeMDC="true" mdcId="mdc" enterpriseNumber="18060" id="Audit"', "udp"),
    "log4j2 RFC5424 tcp newLine=true exceptionPattern newLineEscape": (
        'protocol="TCP" format="RFC5424" appName="orders" newLine="true" '
        'exceptionPattern="%ex{3}" newLineEscape="\\n"', "tcp"),
    "log4j2 RFC5424 tcp newLine=false": ('protocol="TCP" format="RFC5424" appName="orders" newLine="false"', "tcp"),
}


def listen(transport):
    if transport == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    if transport == "tcp":
        s.listen(4)
    s.settimeout(1.0)
    return s


def collect(sock, transport, out):
    if transport == "udp":
        while True:
            try:
                data, _ = sock.recvfrom(65536)
            except socket.timeout:
                return
            out.append(data)
    else:
        try:
            conn, _ = sock.accept()
        except socket.timeout:
            return
        conn.settimeout(1.0)
        buf = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            buf += chunk
        out.append(buf)


def run(sender, transport, config_path, config_text, argv):
    sock = listen(transport)
    port = sock.getsockname()[1]
    with open(config_path, "w") as f:
        f.write(config_text.replace("PORT", str(port)))
    frames = []
    t = threading.Thread(target=collect, args=(sock, transport, frames))
    t.start()
    subprocess.run(argv, check=True, stdout=sys.stderr)
    t.join()
    for f in frames:
        print(json.dumps({"sender": sender, "transport": transport, "hex": f.hex()}))


def main():
    tmp = tempfile.mkdtemp()
    subprocess.run(["javac", "-d", tmp, "-cp", LOG4J1, os.path.join(JAVA, "Log4j1Demo.java")], check=True)
    subprocess.run(["javac", "-d", tmp, "-cp", LOG4J2, os.path.join(JAVA, "Log4j2Demo.java")], check=True)
    for sender, extra in LOG4J1_VARIANTS.items():
        props = os.path.join(tmp, "log4j.properties")
        text = ("log4j.rootLogger=INFO, S\n"
                "log4j.appender.S=org.apache.log4j.net.SyslogAppender\n"
                "log4j.appender.S.syslogHost=127.0.0.1:PORT\n"
                "log4j.appender.S.facility=LOCAL7\n"
                "log4j.appender.S.layout=org.apache.log4j.PatternLayout\n"
                "log4j.appender.S.layout.ConversionPattern=%-5p [%t] %c - %m%n\n"
                "log4j.appender.S." + extra + "\n")
        # Latin-1 JVM: non-ASCII text goes out as single bytes (invalid UTF-8).
        run(sender, "udp", props, text,
            ["java", "-Dfile.encoding=ISO-8859-1", "-Dlog4j.configuration=file:" + props,
             "-cp", tmp + ":" + LOG4J1, "Log4j1Demo"])
    for sender, (attrs, transport) in LOG4J2_VARIANTS.items():
        xml = os.path.join(tmp, "log4j2.xml")
        text = ('<Configuration status="WARN"><Appenders>'
                '<Syslog name="S" host="127.0.0.1" port="PORT" facility="LOCAL4" ' + attrs + '/>'
                '</Appenders><Loggers><Root level="info"><AppenderRef ref="S"/></Root></Loggers>'
                '</Configuration>\n')
        run(sender, transport, xml, text,
            ["java", "-Dlog4j2.configurationFile=" + xml, "-cp", tmp + ":" + LOG4J2, "Log4j2Demo"])


if __name__ == "__main__":
    sys.exit(main())
