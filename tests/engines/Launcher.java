// Starts N nodes of a real OpenSearch or Elasticsearch for the integration
// tests (issue #23). Java 17, one file, run as `java Launcher.java ARGS`:
//
//   --zip FILE        the engine's integ-test zip (from the Maven repository)
//   --cache DIR       where the zip is unpacked once (reused afterwards)
//   --java-home DIR   the JDK the engine runs on
//   --nodes N         1: single-node discovery; more: a cluster of N
//   --heap SIZE       per node (-Xms = -Xmx), e.g. 512m
//   --user NAME       run the nodes as this user when started as root
//   --set KEY=VALUE   an extra setting for every node (repeatable)
//   --fast-start      JVM flags for a quick start on a small, busy machine:
//                     the C1 compiler only (no C2 threads competing for the
//                     cores while the node starts) and, where the engine's
//                     jvm.options picks G1, the serial collector (one GC
//                     thread). Slower at steady state: not for benchmarks.
//
// Every node gets free loopback ports and a temporary data directory. Once
// every node answers `_cluster/health` with all N nodes, ONE JSON line is
// printed: {"ready":true,"nodes":[{"name":"n0","http":"127.0.0.1:PORT"},...]}.
// Commands on stdin: `stop I` kills node I (kill -9, for the lose-a-node
// test) and answers {"stopped":I}. Stdin closed or SIGTERM: every node is
// stopped and the temporary directories removed.

import java.io.*;
import java.net.*;
import java.nio.file.*;
import java.util.*;
import java.util.concurrent.TimeUnit;
import java.util.zip.*;

public class Launcher {
    static final List<Process> nodes = new ArrayList<>();
    static Path runDir;

    public static void main(String[] a) throws Exception {
        String zip = null, cache = null, javaHome = null, heap = "512m", user = "sluicetest";
        int n = 1;
        boolean fast = false;
        List<String> sets = new ArrayList<>();
        for (int i = 0; i < a.length; i += 2) {
            if (a[i].equals("--fast-start")) {
                fast = true;
                i--;
                continue;
            }
            if (i + 1 >= a.length) throw new IllegalArgumentException("no value for " + a[i]);
            switch (a[i]) {
                case "--zip" -> zip = a[i + 1];
                case "--cache" -> cache = a[i + 1];
                case "--java-home" -> javaHome = a[i + 1];
                case "--nodes" -> n = Integer.parseInt(a[i + 1]);
                case "--heap" -> heap = a[i + 1];
                case "--user" -> user = a[i + 1];
                case "--set" -> sets.add(a[i + 1]);
                default -> throw new IllegalArgumentException("unknown argument " + a[i]);
            }
        }
        Path home = unpack(Path.of(zip), Path.of(cache));
        boolean os = Files.exists(home.resolve("bin/opensearch"));
        boolean root = "root".equals(System.getProperty("user.name"));
        runDir = Files.createTempDirectory("sluice-engine-");
        Runtime.getRuntime().addShutdownHook(new Thread(Launcher::stopAll));
        int[] http = new int[n], transport = new int[n];
        for (int i = 0; i < n; i++) {
            http[i] = freePort();
            transport[i] = freePort();
        }
        StringBuilder seeds = new StringBuilder(), names = new StringBuilder();
        for (int i = 0; i < n; i++) {
            seeds.append(i > 0 ? ", " : "").append("\"127.0.0.1:").append(transport[i]).append('"');
            names.append(i > 0 ? ", " : "").append("n").append(i);
        }
        for (int i = 0; i < n; i++) {
            Path dir = runDir.resolve("n" + i);
            copy(home.resolve("config"), dir.resolve("config"));
            StringBuilder yml = new StringBuilder("\ncluster.name: sluice-test\nnode.name: n" + i
                + "\npath.data: " + dir.resolve("data") + "\npath.logs: " + dir.resolve("logs")
                + "\nnetwork.host: 127.0.0.1\nhttp.port: " + http[i] + "\ntransport.port: " + transport[i]
                // The test machine's disk may be fuller than the default watermarks allow.
                + "\ncluster.routing.allocation.disk.threshold_enabled: false\n");
            if (n == 1) {
                yml.append("discovery.type: single-node\n");
            } else {
                yml.append("discovery.seed_hosts: [").append(seeds).append("]\n")
                    .append(os ? "cluster.initial_cluster_manager_nodes: [" : "cluster.initial_master_nodes: [")
                    .append(names).append("]\n");
            }
            if (!os) yml.append("xpack.security.enabled: false\n");
            for (String s : sets) {
                int eq = s.indexOf('=');
                yml.append(s, 0, eq).append(": ").append(s.substring(eq + 1)).append('\n');
            }
            Path conf = dir.resolve("config").resolve(os ? "opensearch.yml" : "elasticsearch.yml");
            Files.writeString(conf, yml, StandardOpenOption.APPEND);
            String prefix = os ? "OPENSEARCH" : "ES";
            List<String> cmd = new ArrayList<>();
            if (root) cmd.addAll(List.of("runuser", "-u", user, "--"));
            cmd.addAll(List.of("env", prefix + "_JAVA_HOME=" + javaHome, prefix + "_PATH_CONF=" + dir.resolve("config"),
                prefix + "_JAVA_OPTS=-Xms" + heap + " -Xmx" + heap,
                home.resolve(os ? "bin/opensearch" : "bin/elasticsearch").toString()));
            // jvm.options writes gc.log, error files and heap dumps relative to the
            // engine's home (shared, read-only): into this node's directory instead.
            Path jvm = dir.resolve("config/jvm.options");
            String options = Files.readString(jvm).replace("=logs/", "=" + dir.resolve("logs") + "/")
                .replace("file=logs/", "file=" + dir.resolve("logs") + "/").replace("HeapDumpPath=data", "HeapDumpPath=" + dir.resolve("data"));
            if (fast) {
                // On the 2-core test machine at load average 15-23 a 3-node
                // cluster was ready in 80-94 s (Elasticsearch) and 138-277 s
                // (OpenSearch) with this; without it one did not come up
                // within 11 min.
                options = options.replace("-XX:+UseG1GC", "-XX:+UseSerialGC") + "\n-XX:TieredStopAtLevel=1\n";
            }
            Files.writeString(jvm, options);
            Files.createDirectories(dir.resolve("logs"));
            Files.createDirectories(dir.resolve("data"));
            if (root) run("chown", "-R", user, runDir.toString());
            ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile()).redirectErrorStream(true)
                .redirectOutput(dir.resolve("out.log").toFile()).redirectInput(ProcessBuilder.Redirect.PIPE);
            synchronized (nodes) {
                nodes.add(pb.start());
            }
        }
        // Stdin is read from now on: closed while the nodes still start (the
        // test binary gone), everything stops too.
        Thread commands = new Thread(Launcher::commands);
        commands.start();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(900);
        for (int i = 0; i < n; i++) {
            while (!healthy(http[i], n)) {
                if (!nodes.get(i).isAlive() || System.nanoTime() > deadline) {
                    System.err.println("node n" + i + (nodes.get(i).isAlive() ? " not ready in 900 s" : " exited") + "; its output ends:");
                    List<String> lines = Files.readAllLines(runDir.resolve("n" + i + "/out.log"));
                    lines.subList(Math.max(0, lines.size() - 30), lines.size()).forEach(System.err::println);
                    System.exit(1);
                }
                Thread.sleep(250);
            }
        }
        StringBuilder ready = new StringBuilder("{\"ready\":true,\"kind\":\"" + (os ? "opensearch" : "elasticsearch") + "\",\"nodes\":[");
        for (int i = 0; i < n; i++) {
            ready.append(i > 0 ? "," : "").append("{\"name\":\"n").append(i).append("\",\"http\":\"127.0.0.1:").append(http[i]).append("\"}");
        }
        System.out.println(ready.append("]}"));
        System.out.flush();
        commands.join();
    }

    /** `stop I` lines until stdin closes; then exit (the hook stops the nodes). */
    static void commands() {
        try {
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
            for (String line; (line = in.readLine()) != null; ) {
                if (line.startsWith("stop ")) {
                    int i = Integer.parseInt(line.substring(5).trim());
                    kill(nodes.get(i), true);
                    System.out.println("{\"stopped\":" + i + "}");
                    System.out.flush();
                }
            }
        } catch (IOException e) {
            System.err.println("stdin: " + e);
        }
        System.exit(0);
    }

    /** Unpacks the zip into cache/<name> once (into a temporary sibling first, then renamed). */
    static Path unpack(Path zip, Path cache) throws IOException {
        String name = zip.getFileName().toString().replaceAll("\\.zip$", "");
        Path target = cache.resolve(name);
        if (Files.isDirectory(target)) return onlyChild(target);
        Files.createDirectories(cache);
        Path tmp = Files.createTempDirectory(cache, name + ".part-");
        try (ZipInputStream z = new ZipInputStream(new BufferedInputStream(Files.newInputStream(zip)))) {
            for (ZipEntry e; (e = z.getNextEntry()) != null; ) {
                Path p = tmp.resolve(e.getName()).normalize();
                if (!p.startsWith(tmp)) throw new IOException("zip entry outside the target: " + e.getName());
                if (e.isDirectory()) {
                    Files.createDirectories(p);
                    continue;
                }
                Files.createDirectories(p.getParent());
                Files.copy(z, p);
                // Zip permissions are not kept by java.util.zip: scripts and tools are executable.
                if (p.getParent().getFileName().toString().equals("bin") || p.toString().contains("/bin/")) {
                    p.toFile().setExecutable(true, false);
                }
            }
        }
        run("chmod", "-R", "a+rX", tmp.toString(), cache.toString());
        try {
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
        } catch (FileAlreadyExistsException | DirectoryNotEmptyException raced) {
            run("rm", "-rf", tmp.toString());
        }
        return onlyChild(target);
    }

    static Path onlyChild(Path dir) throws IOException {
        try (var s = Files.list(dir)) {
            return s.filter(Files::isDirectory).findFirst().orElseThrow(() -> new IOException("empty " + dir));
        }
    }

    static void copy(Path from, Path to) throws IOException {
        try (var s = Files.walk(from)) {
            for (Path p : (Iterable<Path>) s::iterator) {
                Path q = to.resolve(from.relativize(p).toString());
                if (Files.isDirectory(p)) Files.createDirectories(q);
                else Files.copy(p, q);
            }
        }
    }

    /** A port the kernel just handed out; the node binds it moments later. */
    static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    static boolean healthy(int port, int n) {
        try {
            HttpURLConnection c = (HttpURLConnection) new URL("http://127.0.0.1:" + port
                + "/_cluster/health?wait_for_nodes=" + n + "&timeout=1s").openConnection();
            c.setConnectTimeout(1000);
            c.setReadTimeout(5000);
            return c.getResponseCode() == 200;
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

    /** Kill a node: its JVM (a descendant of runuser/env), then the wrapper. */
    static void kill(Process p, boolean hard) {
        List<ProcessHandle> all = new ArrayList<>(p.descendants().toList());
        all.add(p.toHandle());
        for (ProcessHandle h : all) {
            if (hard) h.destroyForcibly(); else h.destroy();
        }
        for (ProcessHandle h : all) {
            try {
                h.onExit().get(20, TimeUnit.SECONDS);
            } catch (Exception e) {
                h.destroyForcibly();
            }
        }
    }

    static void stopAll() {
        synchronized (nodes) {
            for (Process p : nodes) kill(p, false);
        }
        try {
            if (runDir != null) run("rm", "-rf", runDir.toString());
        } catch (IOException ignored) {
        }
    }
}
