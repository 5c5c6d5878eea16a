//! The webhook events a payment's changes produce. Each is recorded in the database
//! transaction of the change it reports (the outbox), and carries the resource's version so
//! that a receiver can order what it gets.

use money::Money;
use webhooks::{EventType, NewEvent};

use crate::domain::{OrderStatus, PaymentStatus};
use crate::store::{Order, Payment};

/// The event of an order that just became final, for its seller; `version` is the order's
/// version after the change.
pub(crate) fn order_final(order: &Order, version: i64) -> NewEvent {
    let event_type = match order.status {
        OrderStatus::Success => EventType::PaymentOrderSucceeded,
        _ => EventType::PaymentOrderFailed,
    };
    NewEvent {
        merchant_id: order.seller.clone(),
        event_type,
        resource_type: "payment_order",
        resource_id: order.id.to_string(),
        resource_version: version,
        data: order_data(order),
    }
}

/// The events of a payment that just ended, one per seller: `payment.succeeded` to a seller
/// whose orders include a success, `payment.failed` to the others. Each shows the payment and
/// that seller's orders only.
pub(crate) fn payment_final(
    payment: &Payment,
    orders: &[Order],
    status: PaymentStatus,
    version: i64,
) -> Vec<NewEvent> {
    let mut sellers: Vec<&str> = orders.iter().map(|o| o.seller.as_str()).collect();
    sellers.sort_unstable();
    sellers.dedup();
    sellers
        .into_iter()
        .map(|seller| {
            let own: Vec<&Order> = orders.iter().filter(|o| o.seller == seller).collect();
            let paid = own.iter().any(|o| o.status == OrderStatus::Success);
            NewEvent {
                merchant_id: seller.to_owned(),
                event_type: if paid {
                    EventType::PaymentSucceeded
                } else {
                    EventType::PaymentFailed
                },
                resource_type: "payment",
                resource_id: payment.id.to_string(),
                resource_version: version,
                data: serde_json::json!({
                    "id": payment.id.as_str(),
                    "checkout_id": payment.checkout_id,
                    "status": status.as_str(),
                    "currency": payment.currency.code(),
                    "payment_orders": own.iter().map(|o| order_data(o)).collect::<Vec<_>>(),
                }),
            }
        })
        .collect()
}

fn order_data(order: &Order) -> serde_json::Value {
    serde_json::json!({
        "id": order.id.as_str(),
        "payment_order_id": order.payment_order_id,
        "payment_id": order.payment_id.as_str(),
        "amount": Money::from_minor(order.amount, order.currency).to_decimal_string(),
        "currency": order.currency.code(),
        "status": order.status.as_str(),
        "escrow": order.escrow,
        "failure_code": order.failure_code,
    })
}
