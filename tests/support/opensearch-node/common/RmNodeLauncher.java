/*
 * The real OpenSearch node of readmodel's `real` tests: one node, security
 * off, HTTP and transport on loopback, the netty4 transport and the common
 * analyzers on the classpath (as the distribution loads them as modules).
 * This is the launcher shared by every OpenSearch version; each version's
 * RmOpenSearchNode (src/ for 2.x, src3/ for 3.x) only makes its Node.
 *
 *   java -cp CLASSPATH RmOpenSearchNode HOME_DIR HTTP_PORT [--exit-on-stdin-eof]
 *
 * HOME_DIR holds data/ and logs/ (kept across a restart, which is how a
 * test restarts the node "with its data"). HTTP_PORT 0 lets the kernel
 * choose. Once the node answers, one line "RM_OPENSEARCH_READY http=PORT"
 * goes to stdout; logs go to stderr. SIGTERM closes the node, and so does
 * the end of stdin with --exit-on-stdin-eof (the test program holds the
 * pipe's other end: if it dies, even by SIGKILL, the node goes too and
 * removes HOME_DIR).
 */
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.CountDownLatch;

import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.http.HttpServerTransport;
import org.opensearch.node.Node;

final class RmNodeLauncher {
    /* The version's Node with the netty4 transport and common analyzers. */
    interface NodeFactory {
        Node create(Environment env) throws Exception;
    }

    private RmNodeLauncher() {
    }

    private static volatile boolean orphaned;

    private static void deleteTree(Path root) throws java.io.IOException {
        try (java.util.stream.Stream<Path> paths = Files.walk(root)) {
            for (Path p : (Iterable<Path>) paths.sorted(java.util.Comparator.reverseOrder())::iterator)
                Files.deleteIfExists(p);
        }
    }

    static void run(String[] args, NodeFactory factory) throws Exception {
        boolean watchStdin = args.length == 3 && args[2].equals("--exit-on-stdin-eof");
        if (args.length != 2 && !watchStdin) {
            System.err.println("usage: RmOpenSearchNode HOME_DIR HTTP_PORT [--exit-on-stdin-eof]");
            System.exit(2);
        }
        Path home = Paths.get(args[0]).toAbsolutePath();
        Files.createDirectories(home.resolve("config"));
        Settings settings = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("cluster.name", "readmodel-test")
            .put("node.name", "node-1")
            .put("discovery.type", "single-node")
            .put("network.host", "127.0.0.1")
            .put("http.port", args[1])
            .put("transport.port", "0")
            .put("http.type", "netty4")
            .put("transport.type", "netty4")
            /* A test wipes its indices between cases (DELETE /_all). */
            .put("action.destructive_requires_name", false)
            /* No disk watermark surprises on a nearly full test machine. */
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .build();
        LogConfigurator.registerErrorListener();
        LogConfigurator.configureWithoutConfig(settings);
        LogConfigurator.setNodeName("node-1");
        Node node = factory.create(new Environment(settings, home.resolve("config")));
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                if (orphaned)
                    deleteTree(home);
            } catch (Exception e) {
                e.printStackTrace();
            }
            closed.countDown();
        }));
        if (watchStdin) {
            Thread watch = new Thread(() -> {
                try {
                    while (System.in.read() >= 0) {
                    }
                } catch (java.io.IOException e) {
                    /* the same as the end of input */
                }
                orphaned = true; /* the test program is gone: nobody else cleans up */
                System.exit(0);
            }, "stdin-watch");
            watch.setDaemon(true);
            watch.start();
        }
        node.start();
        int port = node.injector().getInstance(HttpServerTransport.class)
                       .boundAddress().publishAddress().getPort();
        System.out.println("RM_OPENSEARCH_READY http=" + port);
        System.out.flush();
        closed.await();
    }
}
