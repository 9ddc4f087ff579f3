"""Ids of Block Kit actions, blocks and modals, shared by the renderers and the Slack listeners.

No action id is written as a string literal anywhere else.
"""

from enum import StrEnum


class ActionId(StrEnum):
    APPROVE = "postmortem_approve"
    EDIT = "postmortem_edit"
    REGENERATE = "postmortem_regenerate"
    DISCARD = "postmortem_discard"
    RETRY_PUBLISH = "postmortem_retry_publish"
    START_DRAFT = "postmortem_start_draft"  # the button on the "resolved" prompt
    OPEN_PAGE = "postmortem_open_page"  # a link button: Slack still sends an action we must ack


class CallbackId(StrEnum):
    EDIT_MODAL = "postmortem_edit_modal"


class BlockId(StrEnum):
    HEADER = "pm_header"
    FACTS = "pm_facts"
    METRICS = "pm_metrics"
    SUSPECT = "pm_suspect"
    TIMELINE = "pm_timeline"
    ACTION_ITEMS = "pm_action_items"
    NOTES = "pm_notes"
    REDACTIONS = "pm_redactions"
    STATUS = "pm_status"
    ACTIONS = "pm_actions"
    PROMPT_ACTIONS = "pm_prompt_actions"
    DRAFT_FAILED = "pm_draft_failed"  # the progress message once drafting failed
    DRAFT_FAILED_ACTIONS = "pm_draft_failed_actions"
    # Edit modal input blocks, one per editable section: "pm_edit_<section>"
    EDIT_PREFIX = "pm_edit_"


EDIT_INPUT_ACTION = "value"  # the action id of the plain-text input inside each edit block
