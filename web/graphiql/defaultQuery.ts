/** The query a new GraphiQL tab starts with: the workflows, and subscription examples in comments. */
export const DEFAULT_QUERY = `# flowgraph's GraphQL API through the gateway (this explorer loads nothing from the internet).
# Sign in above, then run with Ctrl-Enter (Cmd-Enter) or the ▶ button; Ctrl-Space completes.
# Subscriptions run over the gateway's websocket (graphql-ws). Uncomment one to try it:
#
# subscription Feed {
#   eventFeed { cursor event { source type streamId occurredAt } }
# }
#
# subscription Run {
#   runUpdated(runId: "<a run id>") { eventType stepName occurredAt run { status } }
# }

query Workflows {
  workflows { id name }
}
`;
