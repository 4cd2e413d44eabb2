/*
 * The real OpenSearch 3.x node of readmodel's `real` tests (Java 21 and
 * newer), where Node takes PluginInfo records and the module plugins have
 * other class names: the Node with the netty4 transport and the common
 * analyzers; everything else is ../common/RmNodeLauncher.java (usage
 * there).
 */
import java.util.Arrays;
import java.util.Collection;
import java.util.Collections;
import java.util.stream.Collectors;

import org.opensearch.Version;
import org.opensearch.analysis.common.CommonAnalysisModulePlugin;
import org.opensearch.env.Environment;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;
import org.opensearch.plugins.PluginInfo;
import org.opensearch.transport.Netty4ModulePlugin;

public final class RmOpenSearchNode extends Node {
    private RmOpenSearchNode(Environment env, Collection<Class<? extends Plugin>> plugins) {
        super(env, plugins.stream().map(p -> new PluginInfo(p.getName(), "classpath plugin", "NA",
                   Version.CURRENT, "21", p.getName(), null, Collections.emptyList(), false))
                   .collect(Collectors.toList()), true);
    }

    public static void main(String[] args) throws Exception {
        RmNodeLauncher.run(args, env -> new RmOpenSearchNode(env,
            Arrays.asList(Netty4ModulePlugin.class, CommonAnalysisModulePlugin.class)));
    }
}
