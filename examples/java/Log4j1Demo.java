import org.apache.log4j.Logger;

/**
 * Logs what a legacy service logs through log4j 1.2's SyslogAppender: a plain
 * line, a status line, an error with a stack trace (cause and suppressed), a
 * message long enough to be split, a message with a newline inside, and
 * non-ASCII text. Configure the appender with -Dlog4j.configuration=file:...
 */
public class Log4j1Demo {
    private static final Logger LOG = Logger.getLogger("com.example.Svc");

    public static void main(String[] args) throws Exception {
        LOG.info("Hello from log4j 1.2");
        LOG.warn("status heap_used=1234 heap_max=4096 threads=17");
        try {
            fail();
        } catch (IllegalStateException e) {
            LOG.error("Order failed id=1001", e);
        }
        StringBuilder longText = new StringBuilder("long message:");
        for (int i = 0; i < 300; i++) {
            longText.append(" word").append(i);
        }
        LOG.info(longText.toString());
        LOG.info("two lines\nsecond line");
        LOG.info("caf\u00e9 cr\u00e8me");
        Thread.sleep(200);
    }

    private static void fail() {
        IllegalStateException top = new IllegalStateException("boom", new java.io.IOException("disk gone"));
        top.addSuppressed(new RuntimeException("cleanup failed"));
        throw top;
    }
}
