// Starts a real Kafka cluster (KRaft, no ZooKeeper) for the integration
// tests (issue #24). Java 17, one file, run over the Maven-resolved
// classpath of pom.xml (beside it) as
//
//   java -cp CLASSPATH Launcher.java ARGS
//
//   --classpath CP    the broker's jars (what `dependency:build-classpath`
//                     printed); copied once into --cache, readable by --user
//   --cache DIR       where the jars are copied (reused afterwards)
//   --nodes N         combined broker+controller nodes (1 or 3)
//   --heap SIZE       per node (-Xms = -Xmx), e.g. 160m
//   --user NAME       run the nodes as this user when started as root
//   --set KEY=VALUE   an extra broker setting for every node (repeatable)
//   --jvm test|server test (default): C1 only and the serial GC, a quick
//                     start; server: the JVM's own choices, as a production
//                     broker runs (the benchmark, benches/e2e/run.py)
//
// Every node gets free loopback ports and a temporary data directory. Once
// every node is a registered broker, ONE JSON line is printed:
//   {"ready":true,"bootstrap":"127.0.0.1:P0,...",
//    "nodes":[{"id":0,"port":P0,"controller":C0,"pid":PID},...]}
// Commands on stdin, one a line, each answered with one JSON line:
//   kill I                     kill -9 node I            {"killed":I}
//   stop I                     SIGTERM node I, wait      {"stopped":I}
//   start I                    restart node I (same ports and data) once
//                              the cluster lists it again {"started":I,"pid":PID}
//   create TOPIC P RF [K=V..]  create a topic with P partitions, replication
//                              factor RF and topic configs  {"created":"TOPIC"}
//   delete TOPIC               delete a topic, wait until it is no longer
//                              listed                    {"deleted":"TOPIC"}
//   leader TOPIC P             {"leader":ID} (-1: none)
//   dump TOPIC FILE            every record of TOPIC, from the start to the
//                              end offsets of now, into FILE as JSON lines:
//                              {"partition":P,"offset":O,"timestamp":MS,
//                               "key":HEX|null,"value":HEX,
//                               "headers":[[NAME,HEX|null],...]}
//                                                        {"dumped":N}
//   produce TOPIC FILE         the records of FILE (JSON lines as `dump`
//                              writes them; "partition" optional) produced
//                              with acks=all           {"produced":N}
// A command that fails answers {"error":"..."}. Stdin closed or SIGTERM:
// every node is stopped and the temporary directories removed.

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.*;
import java.net.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class Launcher {
    static final ObjectMapper JSON = new ObjectMapper();
    static final List<Process> nodes = new ArrayList<>();
    static final List<List<String>> commands = new ArrayList<>();
    static int[] broker, controller;
    static Path runDir;
    static String bootstrap;
    static Admin admin;
    static final java.util.concurrent.CountDownLatch ready = new java.util.concurrent.CountDownLatch(1);

    public static void main(String[] a) throws Exception {
        String classpath = null, cache = null, heap = "160m", user = "sluicetest", jvm = "test";
        int n = 1;
        List<String> sets = new ArrayList<>();
        for (int i = 0; i < a.length; i += 2) {
            if (i + 1 >= a.length) throw new IllegalArgumentException("no value for " + a[i]);
            switch (a[i]) {
                case "--classpath" -> classpath = a[i + 1];
                case "--cache" -> cache = a[i + 1];
                case "--nodes" -> n = Integer.parseInt(a[i + 1]);
                case "--heap" -> heap = a[i + 1];
                case "--user" -> user = a[i + 1];
                case "--set" -> sets.add(a[i + 1]);
                case "--jvm" -> jvm = a[i + 1];
                default -> throw new IllegalArgumentException("unknown argument " + a[i]);
            }
        }
        Path lib = copyJars(classpath, Path.of(cache));
        boolean root = "root".equals(System.getProperty("user.name"));
        runDir = Files.createTempDirectory("sluice-kafka-");
        Runtime.getRuntime().addShutdownHook(new Thread(Launcher::stopAll));
        broker = new int[n];
        controller = new int[n];
        for (int i = 0; i < n; i++) {
            broker[i] = freePort();
            controller[i] = freePort();
        }
        StringBuilder voters = new StringBuilder(), boot = new StringBuilder();
        for (int i = 0; i < n; i++) {
            voters.append(i > 0 ? "," : "").append(i).append("@127.0.0.1:").append(controller[i]);
            boot.append(i > 0 ? "," : "").append("127.0.0.1:").append(broker[i]);
        }
        bootstrap = boot.toString();
        // Kafka's cluster id: 16 random bytes, base64url without padding.
        byte[] id = new byte[16];
        new SecureRandom().nextBytes(id);
        id[0] &= 0x7f;
        String clusterId = Base64.getUrlEncoder().withoutPadding().encodeToString(id);
        int rf = Math.min(3, n);
        for (int i = 0; i < n; i++) {
            Path dir = runDir.resolve("n" + i);
            Files.createDirectories(dir.resolve("data"));
            StringBuilder p = new StringBuilder()
                .append("process.roles=broker,controller\nnode.id=").append(i)
                .append("\ncontroller.quorum.voters=").append(voters)
                .append("\nlisteners=PLAINTEXT://127.0.0.1:").append(broker[i])
                .append(",CONTROLLER://127.0.0.1:").append(controller[i])
                .append("\nadvertised.listeners=PLAINTEXT://127.0.0.1:").append(broker[i])
                .append("\ncontroller.listener.names=CONTROLLER")
                .append("\nlistener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT")
                .append("\ninter.broker.listener.name=PLAINTEXT")
                .append("\nlog.dirs=").append(dir.resolve("data"))
                .append("\nnum.partitions=1")
                .append("\noffsets.topic.replication.factor=").append(rf)
                .append("\ntransaction.state.log.replication.factor=").append(rf)
                .append("\ntransaction.state.log.min.isr=1")
                .append("\nshare.coordinator.state.topic.replication.factor=").append(rf)
                .append("\nshare.coordinator.state.topic.min.isr=1")
                .append("\ngroup.initial.rebalance.delay.ms=0")
                // Few threads: the test machine has 2 cores.
                .append("\nnum.network.threads=2\nnum.io.threads=2\nbackground.threads=2")
                .append("\nnum.recovery.threads.per.data.dir=1\nlog.cleaner.threads=1")
                // The cleaner allocates 128 MB by default: more than the heap.
                .append("\nlog.cleaner.dedupe.buffer.size=4194304\n");
            for (String s : sets) p.append(s).append('\n');
            Path props = dir.resolve("server.properties");
            Files.writeString(props, p);
            List<String> java = new ArrayList<>();
            if (root) java.addAll(List.of("runuser", "-u", user, "--"));
            java.addAll(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xms" + heap, "-Xmx" + heap));
            // C1 only and one GC thread: a quick start on a small, busy machine.
            if (jvm.equals("test")) java.addAll(List.of("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"));
            else if (!jvm.equals("server")) throw new IllegalArgumentException("--jvm test or server");
            java.addAll(List.of("-Xss512k", "-Dlog4j2.level=WARN", "-cp", lib + "/*"));
            List<String> format = new ArrayList<>(java);
            format.addAll(List.of("kafka.tools.StorageTool", "format", "-t", clusterId, "-c", props.toString()));
            if (root) run("chown", "-R", user, runDir.toString());
            Process f = new ProcessBuilder(format).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("format.log").toFile()).start();
            if (f.waitFor() != 0) {
                System.err.println("node " + i + ": storage format failed:");
                System.err.println(Files.readString(dir.resolve("format.log")));
                System.exit(1);
            }
            List<String> start = new ArrayList<>(java);
            start.addAll(List.of("kafka.Kafka", props.toString()));
            commands.add(start);
        }
        for (int i = 0; i < n; i++) {
            synchronized (nodes) {
                nodes.add(launch(i));
            }
        }
        // Stdin is read from now on: closed while the nodes still start (the
        // test binary gone), everything stops too.
        Thread reader = new Thread(Launcher::commands);
        reader.setDaemon(true);
        reader.start();
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        admin = Admin.create(ap);
        for (int i = 0; i < n; i++) waitListed(i, 300);
        StringBuilder line = new StringBuilder("{\"ready\":true,\"bootstrap\":\"" + bootstrap + "\",\"nodes\":[");
        for (int i = 0; i < n; i++) {
            line.append(i > 0 ? "," : "").append("{\"id\":").append(i).append(",\"port\":").append(broker[i])
                .append(",\"controller\":").append(controller[i]).append(",\"pid\":").append(pid(i)).append('}');
        }
        say(line.append("]}").toString());
        Launcher.ready.countDown();
        reader.join();
        System.exit(0);
    }

    static Process launch(int i) throws IOException {
        Path dir = runDir.resolve("n" + i);
        return new ProcessBuilder(commands.get(i)).directory(dir.toFile()).redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(dir.resolve("out.log").toFile())).start();
    }

    /** The JVM's pid (a child of runuser when run as root). */
    static long pid(int i) {
        Process p = nodes.get(i);
        return p.descendants().reduce((x, y) -> y).map(ProcessHandle::pid).orElse(p.pid());
    }

    /** Until node I accepts connections and the cluster lists it as a broker. */
    static void waitListed(int i, int secs) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(secs);
        while (true) {
            if (!nodes.get(i).isAlive() || System.nanoTime() > deadline) {
                System.err.println("node " + i + (nodes.get(i).isAlive() ? " not ready in " + secs + " s" : " exited") + "; its output ends:");
                List<String> lines = Files.readAllLines(runDir.resolve("n" + i + "/out.log"));
                lines.subList(Math.max(0, lines.size() - 30), lines.size()).forEach(System.err::println);
                throw new IOException("node " + i + " did not start");
            }
            if (connects(broker[i])) {
                try {
                    Collection<org.apache.kafka.common.Node> listed = admin.describeCluster(
                        new DescribeClusterOptions().timeoutMs(5000)).nodes().get();
                    if (listed.stream().anyMatch(node -> node.id() == i)) return;
                } catch (Exception retry) {
                    // not yet
                }
            }
            Thread.sleep(200);
        }
    }

    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    /** Commands (run once the cluster is ready) until stdin closes; then
     *  exit (the hook stops the nodes). */
    static void commands() {
        try {
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
            for (String line; (line = in.readLine()) != null; ) {
                ready.await();
                String[] w = line.trim().split("\\s+");
                try {
                    say(command(w));
                } catch (Exception e) {
                    ObjectNode o = JSON.createObjectNode();
                    o.put("error", line.trim() + ": " + e);
                    say(o.toString());
                }
            }
        } catch (IOException | InterruptedException e) {
            System.err.println("stdin: " + e);
        }
        System.exit(0);
    }

    static String command(String[] w) throws Exception {
        switch (w[0]) {
            case "kill", "stop" -> {
                int i = Integer.parseInt(w[1]);
                kill(nodes.get(i), w[0].equals("kill"));
                return "{\"" + (w[0].equals("kill") ? "killed" : "stopped") + "\":" + i + "}";
            }
            case "start" -> {
                int i = Integer.parseInt(w[1]);
                if (nodes.get(i).isAlive()) throw new IOException("node " + i + " is running");
                synchronized (nodes) {
                    nodes.set(i, launch(i));
                }
                waitListed(i, 300);
                return "{\"started\":" + i + ",\"pid\":" + pid(i) + "}";
            }
            case "create" -> {
                Map<String, String> configs = new HashMap<>();
                for (int k = 4; k < w.length; k++) {
                    int eq = w[k].indexOf('=');
                    configs.put(w[k].substring(0, eq), w[k].substring(eq + 1));
                }
                NewTopic t = new NewTopic(w[1], Integer.parseInt(w[2]), Short.parseShort(w[3])).configs(configs);
                admin.createTopics(List.of(t)).all().get(60, TimeUnit.SECONDS);
                // Until every partition has a leader: a producer started
                // right after finds them.
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (System.nanoTime() < deadline) {
                    try {
                        var d = admin.describeTopics(List.of(w[1])).allTopicNames().get().get(w[1]);
                        if (d.partitions().stream().allMatch(p -> p.leader() != null && !p.leader().isEmpty())) break;
                    } catch (Exception retry) {
                        // not yet
                    }
                    Thread.sleep(100);
                }
                return "{\"created\":" + JSON.writeValueAsString(w[1]) + "}";
            }
            case "delete" -> {
                admin.deleteTopics(List.of(w[1])).all().get(60, TimeUnit.SECONDS);
                // Until the cluster no longer lists it: a `create` of the
                // same name right after makes a new topic, not an error.
                long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
                while (admin.listTopics().names().get(30, TimeUnit.SECONDS).contains(w[1])) {
                    if (System.nanoTime() > deadline) throw new IOException("delete " + w[1] + ": still listed after 60 s");
                    Thread.sleep(100);
                }
                return "{\"deleted\":" + JSON.writeValueAsString(w[1]) + "}";
            }
            case "leader" -> {
                var d = admin.describeTopics(List.of(w[1])).allTopicNames().get(30, TimeUnit.SECONDS).get(w[1]);
                var leader = d.partitions().get(Integer.parseInt(w[2])).leader();
                return "{\"leader\":" + (leader == null || leader.isEmpty() ? -1 : leader.id()) + "}";
            }
            case "dump" -> {
                return "{\"dumped\":" + dump(w[1], Path.of(w[2])) + "}";
            }
            case "produce" -> {
                return "{\"produced\":" + produce(w[1], Path.of(w[2])) + "}";
            }
            default -> throw new IllegalArgumentException("unknown command");
        }
    }

    static long dump(String topic, Path file) throws Exception {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        try (var c = new KafkaConsumer<byte[], byte[]>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
             var out = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            List<TopicPartition> parts = c.partitionsFor(topic, Duration.ofSeconds(30)).stream()
                .map(i -> new TopicPartition(topic, i.partition())).toList();
            c.assign(parts);
            c.seekToBeginning(parts);
            Map<TopicPartition, Long> end = c.endOffsets(parts, Duration.ofSeconds(30));
            long count = 0;
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(120);
            while (parts.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
                if (System.nanoTime() > deadline) throw new IOException("dump " + topic + ": not at the end offsets in 120 s");
                for (ConsumerRecord<byte[], byte[]> r : c.poll(Duration.ofMillis(500))) {
                    ObjectNode o = JSON.createObjectNode();
                    o.put("partition", r.partition());
                    o.put("offset", r.offset());
                    o.put("timestamp", r.timestamp());
                    o.put("key", r.key() == null ? null : HexFormat.of().formatHex(r.key()));
                    o.put("value", r.value() == null ? null : HexFormat.of().formatHex(r.value()));
                    ArrayNode hs = o.putArray("headers");
                    for (Header h : r.headers()) {
                        ArrayNode pair = hs.addArray();
                        pair.add(h.key());
                        pair.add(h.value() == null ? null : HexFormat.of().formatHex(h.value()));
                    }
                    out.write(o.toString());
                    out.write('\n');
                    count++;
                }
            }
            return count;
        }
    }

    static long produce(String topic, Path file) throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        long count = 0;
        try (var prod = new KafkaProducer<byte[], byte[]>(p, new ByteArraySerializer(), new ByteArraySerializer());
             var in = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            List<java.util.concurrent.Future<RecordMetadata>> sent = new ArrayList<>();
            for (String line; (line = in.readLine()) != null; ) {
                if (line.isBlank()) continue;
                JsonNode o = JSON.readTree(line);
                Integer partition = o.hasNonNull("partition") ? o.get("partition").asInt() : null;
                byte[] key = o.hasNonNull("key") ? HexFormat.of().parseHex(o.get("key").asText()) : null;
                byte[] value = o.hasNonNull("value") ? HexFormat.of().parseHex(o.get("value").asText()) : null;
                ProducerRecord<byte[], byte[]> r = new ProducerRecord<>(topic, partition, key, value);
                if (o.has("headers")) {
                    for (JsonNode h : o.get("headers")) {
                        r.headers().add(h.get(0).asText(), h.get(1).isNull() ? null : HexFormat.of().parseHex(h.get(1).asText()));
                    }
                }
                sent.add(prod.send(r));
                count++;
            }
            for (var f : sent) f.get(60, TimeUnit.SECONDS);
        }
        return count;
    }

    /** The classpath's jars copied into cache/kafka-<hash>/ once (a temporary sibling, then renamed). */
    static Path copyJars(String classpath, Path cache) throws IOException {
        List<String> jars = Arrays.stream(classpath.trim().split(File.pathSeparator)).filter(s -> !s.isEmpty()).sorted().toList();
        Path target = cache.resolve("kafka-" + Integer.toHexString(String.join(":", jars).hashCode()));
        if (Files.isDirectory(target)) return target;
        Files.createDirectories(cache);
        Path tmp = Files.createTempDirectory(cache, "kafka.part-");
        for (String j : jars) {
            Path from = Path.of(j);
            Files.copy(from, tmp.resolve(from.getFileName()), StandardCopyOption.REPLACE_EXISTING);
        }
        run("chmod", "-R", "a+rX", tmp.toString());
        run("chmod", "a+rx", cache.toString());
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (FileAlreadyExistsException | DirectoryNotEmptyException raced) {
            run("rm", "-rf", tmp.toString());
        }
        return target;
    }

    /** A port the kernel just handed out; the node binds it moments later. */
    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    /** The listener binds [::ffff:127.0.0.1]:PORT: probe with a connect. */
    static boolean connects(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 1000);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    static void run(String... cmd) throws IOException {
        try {
            new ProcessBuilder(cmd).inheritIO().start().waitFor();
        } catch (InterruptedException e) {
            throw new IOException(e);
        }
    }

    /** Kill a node: its JVM (a descendant of runuser), then the wrapper. */
    static void kill(Process p, boolean hard) {
        List<ProcessHandle> all = new ArrayList<>(p.descendants().toList());
        all.add(p.toHandle());
        for (ProcessHandle h : all) {
            if (hard) h.destroyForcibly(); else h.destroy();
        }
        for (ProcessHandle h : all) {
            try {
                h.onExit().get(30, TimeUnit.SECONDS);
            } catch (Exception e) {
                h.destroyForcibly();
            }
        }
    }

    static void stopAll() {
        if (admin != null) admin.close(Duration.ofSeconds(1));
        synchronized (nodes) {
            // Hard: the test is over, nothing of the data is kept.
            for (Process p : nodes) kill(p, true);
        }
        try {
            if (runDir != null) run("rm", "-rf", runDir.toString());
        } catch (IOException ignored) {
        }
    }
}
