/*
 * The real OpenSearch 2.x node of readmodel's `real` tests (Java 17): the
 * Node with the netty4 transport and the common analyzers; everything else
 * is ../common/RmNodeLauncher.java (usage there).
 */
import java.util.Arrays;
import java.util.Collection;

import org.opensearch.analysis.common.CommonAnalysisPlugin;
import org.opensearch.env.Environment;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.transport.Netty4Plugin;

public final class RmOpenSearchNode extends Node {
    private RmOpenSearchNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
        super(env, plugins, true);
    }

    public static void main(String[] args) throws Exception {
        RmNodeLauncher.run(args, env -> new RmOpenSearchNode(env,
            Arrays.asList(Netty4Plugin.class, CommonAnalysisPlugin.class)));
    }
}
